#include "textflag.h"

// Scoring kernel of dotRows (dot_amd64.go).
//
// Registers: SI x, DI the current row of y, DX the current entry of out,
// BX the row stride in bytes (k·4), R13 the bytes of whole 16-column
// vectors, K1 the mask of the last k mod 16 columns, R8 the rows left.
// Four rows are scored at once (R9..R11 point at the second to fourth);
// their four sums are reduced together by horizontal adds.

// func dotRowsAVX512(x, y, out *float32, k, n int)
TEXT ·dotRowsAVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ out+16(FP), DX
	MOVQ k+24(FP), BX
	MOVQ n+32(FP), R8
	MOVQ BX, CX
	ANDQ $15, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	MOVQ BX, R13
	ANDQ $-16, R13
	SHLQ $2, R13
	SHLQ $2, BX

loop4:
	CMPQ R8, $4
	JLT  loop1
	MOVQ DI, AX
	LEAQ (DI)(BX*1), R9
	LEAQ (R9)(BX*1), R10
	LEAQ (R10)(BX*1), R11
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	XORQ CX, CX

dot4:
	CMPQ CX, R13
	JGE  tail4
	VMOVUPS (SI)(CX*1), Z4
	VFMADD231PS (AX)(CX*1), Z4, Z0
	VFMADD231PS (R9)(CX*1), Z4, Z1
	VFMADD231PS (R10)(CX*1), Z4, Z2
	VFMADD231PS (R11)(CX*1), Z4, Z3
	ADDQ $64, CX
	JMP  dot4

tail4:
	KORTESTW K1, K1
	JZ   red4
	VMOVUPS.Z (SI)(CX*1), K1, Z4
	VMOVUPS.Z (AX)(CX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z0
	VMOVUPS.Z (R9)(CX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z1
	VMOVUPS.Z (R10)(CX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z2
	VMOVUPS.Z (R11)(CX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z3

red4:
	VEXTRACTF64X4 $1, Z0, Y5
	VADDPS Y5, Y0, Y0
	VEXTRACTF64X4 $1, Z1, Y5
	VADDPS Y5, Y1, Y1
	VEXTRACTF64X4 $1, Z2, Y5
	VADDPS Y5, Y2, Y2
	VEXTRACTF64X4 $1, Z3, Y5
	VADDPS Y5, Y3, Y3
	VHADDPS Y1, Y0, Y0
	VHADDPS Y3, Y2, Y2
	VHADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVUPS X0, (DX)
	ADDQ $16, DX
	LEAQ (R11)(BX*1), DI
	SUBQ $4, R8
	JMP  loop4

loop1:
	TESTQ R8, R8
	JLE  done
	VXORPS Z0, Z0, Z0
	XORQ CX, CX

dot1:
	CMPQ CX, R13
	JGE  tail1
	VMOVUPS (SI)(CX*1), Z4
	VFMADD231PS (DI)(CX*1), Z4, Z0
	ADDQ $64, CX
	JMP  dot1

tail1:
	KORTESTW K1, K1
	JZ   red1
	VMOVUPS.Z (SI)(CX*1), K1, Z4
	VMOVUPS.Z (DI)(CX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z0

red1:
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VMOVSS X0, (DX)
	ADDQ $4, DX
	ADDQ BX, DI
	DECQ R8
	JMP  loop1

done:
	VZEROUPPER
	RET
