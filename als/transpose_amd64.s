//go:build amd64

#include "textflag.h"

// iota16 is 0, 1, …, 15 as int32 lanes.
DATA iota16<>+0(SB)/8, $0x0000000100000000
DATA iota16<>+8(SB)/8, $0x0000000300000002
DATA iota16<>+16(SB)/8, $0x0000000500000004
DATA iota16<>+24(SB)/8, $0x0000000700000006
DATA iota16<>+32(SB)/8, $0x0000000900000008
DATA iota16<>+40(SB)/8, $0x0000000b0000000a
DATA iota16<>+48(SB)/8, $0x0000000d0000000c
DATA iota16<>+56(SB)/8, $0x0000000f0000000e
GLOBL iota16<>(SB), RODATA|NOPTR, $64

// func transposeAVX512(t, pan *float32, n, np, kp int)
// t[i*np + r] = g[r*kp + i] for i < kp and r < np, 0 for n ≤ r < np; np
// and kp are multiples of 16. Each 16-lane row piece of t is one masked
// gather down a column of g (which a row solve has just written, so it is
// in L1); four gathers are in flight at a time.
//
// Registers: DI t, SI g, R8 n, R9 np·4, R10 kp, BX r0, DX &g[r0][i],
// R11 &t[i][r0], R12 columns left, Z31 lane·kp, K1 lanes r0+l < n.
TEXT ·transposeAVX512(SB), NOSPLIT, $0-40
	MOVQ t+0(FP), DI
	MOVQ pan+8(FP), SI
	MOVQ n+16(FP), R8
	MOVQ np+24(FP), R9
	MOVQ kp+32(FP), R10
	VPBROADCASTD R10, Z30
	VMOVDQU32 iota16<>(SB), Z29
	VPMULLD Z30, Z29, Z31
	SHLQ $2, R9
	XORQ BX, BX

t512block:
	MOVQ BX, AX
	SHLQ $2, AX
	CMPQ AX, R9
	JGE  t512done
	// K1: the lanes of this block of 16 rows that exist (r0 + l < n).
	MOVQ R8, CX
	SUBQ BX, CX
	MOVL $0xffff, AX
	CMPQ CX, $16
	JGE  t512mask
	XORL AX, AX
	TESTQ CX, CX
	JLE  t512mask
	MOVL $1, AX
	SHLL CX, AX
	DECL AX

t512mask:
	KMOVW AX, K1
	MOVQ BX, AX
	IMULQ R10, AX
	LEAQ (SI)(AX*4), DX
	LEAQ (DI)(BX*4), R11
	MOVQ R10, R12

t512cols:
	KMOVW K1, K2
	KMOVW K1, K3
	KMOVW K1, K4
	KMOVW K1, K5
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VGATHERDPS 0(DX)(Z31*4), K2, Z0
	VGATHERDPS 4(DX)(Z31*4), K3, Z1
	VGATHERDPS 8(DX)(Z31*4), K4, Z2
	VGATHERDPS 12(DX)(Z31*4), K5, Z3
	VMOVUPS Z0, (R11)
	ADDQ R9, R11
	VMOVUPS Z1, (R11)
	ADDQ R9, R11
	VMOVUPS Z2, (R11)
	ADDQ R9, R11
	VMOVUPS Z3, (R11)
	ADDQ R9, R11
	ADDQ $16, DX
	SUBQ $4, R12
	JNZ  t512cols
	ADDQ $16, BX
	JMP  t512block

t512done:
	VZEROUPPER
	RET

// func transposeAVX2(t, pan *float32, n, np, kp int)
// transposeAVX512 with 8-lane gathers: np and kp are multiples of 8.
//
// Registers as above, with Y15 lane·kp, Y14 the lane mask (r0+l < n), Y13
// lane numbers.
TEXT ·transposeAVX2(SB), NOSPLIT, $0-40
	MOVQ t+0(FP), DI
	MOVQ pan+8(FP), SI
	MOVQ n+16(FP), R8
	MOVQ np+24(FP), R9
	MOVQ kp+32(FP), R10
	VMOVDQU iota16<>(SB), Y13
	MOVQ R10, X0
	VPBROADCASTD X0, Y12
	VPMULLD Y12, Y13, Y15
	SHLQ $2, R9
	XORQ BX, BX

t2block:
	MOVQ BX, AX
	SHLQ $2, AX
	CMPQ AX, R9
	JGE  t2done
	// Y14: lanes with l < n - r0 all ones.
	MOVQ R8, CX
	SUBQ BX, CX
	MOVQ CX, X0
	VPBROADCASTD X0, Y12
	VPCMPGTD Y13, Y12, Y14
	MOVQ BX, AX
	IMULQ R10, AX
	LEAQ (SI)(AX*4), DX
	LEAQ (DI)(BX*4), R11
	MOVQ R10, R12

t2cols:
	VMOVDQU Y14, Y4
	VMOVDQU Y14, Y5
	VMOVDQU Y14, Y6
	VMOVDQU Y14, Y7
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VGATHERDPS Y4, 0(DX)(Y15*4), Y0
	VGATHERDPS Y5, 4(DX)(Y15*4), Y1
	VGATHERDPS Y6, 8(DX)(Y15*4), Y2
	VGATHERDPS Y7, 12(DX)(Y15*4), Y3
	VMOVUPS Y0, (R11)
	ADDQ R9, R11
	VMOVUPS Y1, (R11)
	ADDQ R9, R11
	VMOVUPS Y2, (R11)
	ADDQ R9, R11
	VMOVUPS Y3, (R11)
	ADDQ R9, R11
	ADDQ $16, DX
	SUBQ $4, R12
	JNZ  t2cols
	ADDQ $8, BX
	JMP  t2block

t2done:
	VZEROUPPER
	RET
