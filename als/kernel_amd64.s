//go:build amd64

#include "textflag.h"

// Vector kernels for kernel_amd64.go. Register use avoids BP (frame
// pointer), R14 (g) and R15 (GOT base under dynamic linking).

// Masks for AVX2 tails: a load from offset (8-m)*4 of mask32 gives m
// all-ones int32 lanes followed by zeros; the same with 8-byte lanes for
// mask64 at offset (8-m)*8 (two ymm registers).
DATA mask32<>+0(SB)/8, $0xffffffffffffffff
DATA mask32<>+8(SB)/8, $0xffffffffffffffff
DATA mask32<>+16(SB)/8, $0xffffffffffffffff
DATA mask32<>+24(SB)/8, $0xffffffffffffffff
DATA mask32<>+32(SB)/8, $0
DATA mask32<>+40(SB)/8, $0
DATA mask32<>+48(SB)/8, $0
DATA mask32<>+56(SB)/8, $0
GLOBL mask32<>(SB), RODATA|NOPTR, $64

DATA mask64<>+0(SB)/8, $0xffffffffffffffff
DATA mask64<>+8(SB)/8, $0xffffffffffffffff
DATA mask64<>+16(SB)/8, $0xffffffffffffffff
DATA mask64<>+24(SB)/8, $0xffffffffffffffff
DATA mask64<>+32(SB)/8, $0xffffffffffffffff
DATA mask64<>+40(SB)/8, $0xffffffffffffffff
DATA mask64<>+48(SB)/8, $0xffffffffffffffff
DATA mask64<>+56(SB)/8, $0xffffffffffffffff
DATA mask64<>+64(SB)/8, $0
DATA mask64<>+72(SB)/8, $0
DATA mask64<>+80(SB)/8, $0
DATA mask64<>+88(SB)/8, $0
DATA mask64<>+96(SB)/8, $0
DATA mask64<>+104(SB)/8, $0
DATA mask64<>+112(SB)/8, $0
DATA mask64<>+120(SB)/8, $0
GLOBL mask64<>(SB), RODATA|NOPTR, $128

// ---------------------------------------------------------------------------
// syrk: c[i][j] += Σ_r x[r][i]·wx[r][j] on tiles touching the upper triangle.
//
// Registers (both paths): DI c, SI x, DX wx, CX n, R8 row stride in bytes
// (kp·8), R9 i0·8, R10 &c[i0][j0], R11 &x[0][i0], R12 j0·8, R13 &x[r][i0],
// AX &wx[r][j0], BX rows left.

// func syrkAVX512(c, x, wx *float64, n, kp int)
// Tiles of 8 rows × 16 columns in Z0-Z15; a row block starting at i0 ≡ 8
// (mod 16) begins with an 8×8 tile so that every tile stays inside kp.
TEXT ·syrkAVX512(SB), NOSPLIT, $0-40
	MOVQ c+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ wx+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ kp+32(FP), R8
	SHLQ $3, R8
	XORQ R9, R9

s5row:
	CMPQ R9, R8
	JGE  s5done
	MOVQ R9, AX
	SHRQ $3, AX
	IMULQ R8, AX
	ADDQ DI, AX
	LEAQ (AX)(R9*1), R10
	LEAQ (SI)(R9*1), R11
	MOVQ R9, R12
	TESTQ $64, R9
	JZ   s5full

	// 8×8 tile on the diagonal.
	MOVQ R10, AX
	VMOVUPD (AX), Z0
	ADDQ R8, AX
	VMOVUPD (AX), Z1
	ADDQ R8, AX
	VMOVUPD (AX), Z2
	ADDQ R8, AX
	VMOVUPD (AX), Z3
	ADDQ R8, AX
	VMOVUPD (AX), Z4
	ADDQ R8, AX
	VMOVUPD (AX), Z5
	ADDQ R8, AX
	VMOVUPD (AX), Z6
	ADDQ R8, AX
	VMOVUPD (AX), Z7
	MOVQ R11, R13
	LEAQ (DX)(R12*1), AX
	MOVQ CX, BX

s5nloop:
	VMOVUPD (AX), Z16
	VFMADD231PD.BCST (R13), Z16, Z0
	VFMADD231PD.BCST 8(R13), Z16, Z1
	VFMADD231PD.BCST 16(R13), Z16, Z2
	VFMADD231PD.BCST 24(R13), Z16, Z3
	VFMADD231PD.BCST 32(R13), Z16, Z4
	VFMADD231PD.BCST 40(R13), Z16, Z5
	VFMADD231PD.BCST 48(R13), Z16, Z6
	VFMADD231PD.BCST 56(R13), Z16, Z7
	ADDQ R8, AX
	ADDQ R8, R13
	DECQ BX
	JNZ  s5nloop

	MOVQ R10, AX
	VMOVUPD Z0, (AX)
	ADDQ R8, AX
	VMOVUPD Z1, (AX)
	ADDQ R8, AX
	VMOVUPD Z2, (AX)
	ADDQ R8, AX
	VMOVUPD Z3, (AX)
	ADDQ R8, AX
	VMOVUPD Z4, (AX)
	ADDQ R8, AX
	VMOVUPD Z5, (AX)
	ADDQ R8, AX
	VMOVUPD Z6, (AX)
	ADDQ R8, AX
	VMOVUPD Z7, (AX)
	ADDQ $64, R12
	ADDQ $64, R10

s5full:
	CMPQ R12, R8
	JGE  s5next
	MOVQ R10, AX
	VMOVUPD (AX), Z0
	VMOVUPD 64(AX), Z1
	ADDQ R8, AX
	VMOVUPD (AX), Z2
	VMOVUPD 64(AX), Z3
	ADDQ R8, AX
	VMOVUPD (AX), Z4
	VMOVUPD 64(AX), Z5
	ADDQ R8, AX
	VMOVUPD (AX), Z6
	VMOVUPD 64(AX), Z7
	ADDQ R8, AX
	VMOVUPD (AX), Z8
	VMOVUPD 64(AX), Z9
	ADDQ R8, AX
	VMOVUPD (AX), Z10
	VMOVUPD 64(AX), Z11
	ADDQ R8, AX
	VMOVUPD (AX), Z12
	VMOVUPD 64(AX), Z13
	ADDQ R8, AX
	VMOVUPD (AX), Z14
	VMOVUPD 64(AX), Z15
	MOVQ R11, R13
	LEAQ (DX)(R12*1), AX
	MOVQ CX, BX

s5floop:
	VMOVUPD (AX), Z16
	VMOVUPD 64(AX), Z17
	VBROADCASTSD (R13), Z18
	VFMADD231PD Z16, Z18, Z0
	VFMADD231PD Z17, Z18, Z1
	VBROADCASTSD 8(R13), Z19
	VFMADD231PD Z16, Z19, Z2
	VFMADD231PD Z17, Z19, Z3
	VBROADCASTSD 16(R13), Z20
	VFMADD231PD Z16, Z20, Z4
	VFMADD231PD Z17, Z20, Z5
	VBROADCASTSD 24(R13), Z21
	VFMADD231PD Z16, Z21, Z6
	VFMADD231PD Z17, Z21, Z7
	VBROADCASTSD 32(R13), Z22
	VFMADD231PD Z16, Z22, Z8
	VFMADD231PD Z17, Z22, Z9
	VBROADCASTSD 40(R13), Z23
	VFMADD231PD Z16, Z23, Z10
	VFMADD231PD Z17, Z23, Z11
	VBROADCASTSD 48(R13), Z24
	VFMADD231PD Z16, Z24, Z12
	VFMADD231PD Z17, Z24, Z13
	VBROADCASTSD 56(R13), Z25
	VFMADD231PD Z16, Z25, Z14
	VFMADD231PD Z17, Z25, Z15
	ADDQ R8, AX
	ADDQ R8, R13
	DECQ BX
	JNZ  s5floop

	MOVQ R10, AX
	VMOVUPD Z0, (AX)
	VMOVUPD Z1, 64(AX)
	ADDQ R8, AX
	VMOVUPD Z2, (AX)
	VMOVUPD Z3, 64(AX)
	ADDQ R8, AX
	VMOVUPD Z4, (AX)
	VMOVUPD Z5, 64(AX)
	ADDQ R8, AX
	VMOVUPD Z6, (AX)
	VMOVUPD Z7, 64(AX)
	ADDQ R8, AX
	VMOVUPD Z8, (AX)
	VMOVUPD Z9, 64(AX)
	ADDQ R8, AX
	VMOVUPD Z10, (AX)
	VMOVUPD Z11, 64(AX)
	ADDQ R8, AX
	VMOVUPD Z12, (AX)
	VMOVUPD Z13, 64(AX)
	ADDQ R8, AX
	VMOVUPD Z14, (AX)
	VMOVUPD Z15, 64(AX)
	ADDQ $128, R12
	ADDQ $128, R10
	JMP  s5full

s5next:
	ADDQ $64, R9
	JMP  s5row

s5done:
	VZEROUPPER
	RET

// func syrkAVX2(c, x, wx *float64, n, kp int)
// Tiles of 4 rows × 8 columns in Y0-Y7; a row block starting at i0 ≡ 4
// (mod 8) begins with a 4×4 tile.
TEXT ·syrkAVX2(SB), NOSPLIT, $0-40
	MOVQ c+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ wx+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ kp+32(FP), R8
	SHLQ $3, R8
	XORQ R9, R9

s2row:
	CMPQ R9, R8
	JGE  s2done
	MOVQ R9, AX
	SHRQ $3, AX
	IMULQ R8, AX
	ADDQ DI, AX
	LEAQ (AX)(R9*1), R10
	LEAQ (SI)(R9*1), R11
	MOVQ R9, R12
	TESTQ $32, R9
	JZ   s2full

	// 4×4 tile on the diagonal.
	MOVQ R10, AX
	VMOVUPD (AX), Y0
	ADDQ R8, AX
	VMOVUPD (AX), Y1
	ADDQ R8, AX
	VMOVUPD (AX), Y2
	ADDQ R8, AX
	VMOVUPD (AX), Y3
	MOVQ R11, R13
	LEAQ (DX)(R12*1), AX
	MOVQ CX, BX

s2nloop:
	VMOVUPD (AX), Y8
	VBROADCASTSD (R13), Y10
	VFMADD231PD Y8, Y10, Y0
	VBROADCASTSD 8(R13), Y11
	VFMADD231PD Y8, Y11, Y1
	VBROADCASTSD 16(R13), Y12
	VFMADD231PD Y8, Y12, Y2
	VBROADCASTSD 24(R13), Y13
	VFMADD231PD Y8, Y13, Y3
	ADDQ R8, AX
	ADDQ R8, R13
	DECQ BX
	JNZ  s2nloop

	MOVQ R10, AX
	VMOVUPD Y0, (AX)
	ADDQ R8, AX
	VMOVUPD Y1, (AX)
	ADDQ R8, AX
	VMOVUPD Y2, (AX)
	ADDQ R8, AX
	VMOVUPD Y3, (AX)
	ADDQ $32, R12
	ADDQ $32, R10

s2full:
	CMPQ R12, R8
	JGE  s2next
	MOVQ R10, AX
	VMOVUPD (AX), Y0
	VMOVUPD 32(AX), Y1
	ADDQ R8, AX
	VMOVUPD (AX), Y2
	VMOVUPD 32(AX), Y3
	ADDQ R8, AX
	VMOVUPD (AX), Y4
	VMOVUPD 32(AX), Y5
	ADDQ R8, AX
	VMOVUPD (AX), Y6
	VMOVUPD 32(AX), Y7
	MOVQ R11, R13
	LEAQ (DX)(R12*1), AX
	MOVQ CX, BX

s2floop:
	VMOVUPD (AX), Y8
	VMOVUPD 32(AX), Y9
	VBROADCASTSD (R13), Y10
	VFMADD231PD Y8, Y10, Y0
	VFMADD231PD Y9, Y10, Y1
	VBROADCASTSD 8(R13), Y11
	VFMADD231PD Y8, Y11, Y2
	VFMADD231PD Y9, Y11, Y3
	VBROADCASTSD 16(R13), Y12
	VFMADD231PD Y8, Y12, Y4
	VFMADD231PD Y9, Y12, Y5
	VBROADCASTSD 24(R13), Y13
	VFMADD231PD Y8, Y13, Y6
	VFMADD231PD Y9, Y13, Y7
	ADDQ R8, AX
	ADDQ R8, R13
	DECQ BX
	JNZ  s2floop

	MOVQ R10, AX
	VMOVUPD Y0, (AX)
	VMOVUPD Y1, 32(AX)
	ADDQ R8, AX
	VMOVUPD Y2, (AX)
	VMOVUPD Y3, 32(AX)
	ADDQ R8, AX
	VMOVUPD Y4, (AX)
	VMOVUPD Y5, 32(AX)
	ADDQ R8, AX
	VMOVUPD Y6, (AX)
	VMOVUPD Y7, 32(AX)
	ADDQ $64, R12
	ADDQ $64, R10
	JMP  s2full

s2next:
	ADDQ $32, R9
	JMP  s2row

s2done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// gatherApply: q += Σ_j w_j (y_j·p) y_j, y_j = other[cols[j]·k:][:k].
//
// Registers: DI q, SI p, DX other, BX row stride in bytes (k·4), R8 &cols[j],
// R9 &cols[ncols], R10 &w[j] (0: no weights), R11 nrows, R13 bytes of whole
// vectors, R12 = R13 − 3 vectors (a 4-vector step fits while CX < R12),
// AX &y_j[0], CX byte offset in the row. A column index outside [0, nrows)
// stops the kernel, which returns its position j (else −1).

// func gatherApplyAVX512(q, p, other *float32, k int, cols *int32, ncols int, w *float32, nrows int) (bad int)
TEXT ·gatherApplyAVX512(SB), NOSPLIT, $0-72
	MOVQ q+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ other+16(FP), DX
	MOVQ k+24(FP), BX
	MOVQ cols+32(FP), R8
	MOVQ ncols+40(FP), R9
	MOVQ w+48(FP), R10
	MOVQ nrows+56(FP), R11
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
	LEAQ (R8)(R9*4), R9
	LEAQ -192(R13), R12

g5loop:
	CMPQ R8, R9
	JAE  g5done
	MOVLQSX (R8), AX
	CMPQ AX, R11
	JAE  g5bad
	IMULQ BX, AX
	ADDQ DX, AX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	XORQ CX, CX

g5dot4:
	CMPQ CX, R12
	JGE  g5dot1
	VMOVUPS (AX)(CX*1), Z4
	VFMADD231PS (SI)(CX*1), Z4, Z0
	VMOVUPS 64(AX)(CX*1), Z5
	VFMADD231PS 64(SI)(CX*1), Z5, Z1
	VMOVUPS 128(AX)(CX*1), Z6
	VFMADD231PS 128(SI)(CX*1), Z6, Z2
	VMOVUPS 192(AX)(CX*1), Z7
	VFMADD231PS 192(SI)(CX*1), Z7, Z3
	ADDQ $256, CX
	JMP  g5dot4

g5dot1:
	CMPQ CX, R13
	JGE  g5dott
	VMOVUPS (AX)(CX*1), Z4
	VFMADD231PS (SI)(CX*1), Z4, Z0
	ADDQ $64, CX
	JMP  g5dot1

g5dott:
	KORTESTW K1, K1
	JZ   g5red
	VMOVUPS.Z (AX)(CX*1), K1, Z4
	VMOVUPS.Z (SI)(CX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z1

g5red:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	TESTQ R10, R10
	JZ   g5now
	VMULSS (R10), X0, X0
	ADDQ $4, R10

g5now:
	VBROADCASTSS X0, Z6
	XORQ CX, CX

g5ax4:
	CMPQ CX, R12
	JGE  g5ax1
	VMOVUPS (DI)(CX*1), Z0
	VFMADD231PS (AX)(CX*1), Z6, Z0
	VMOVUPS Z0, (DI)(CX*1)
	VMOVUPS 64(DI)(CX*1), Z1
	VFMADD231PS 64(AX)(CX*1), Z6, Z1
	VMOVUPS Z1, 64(DI)(CX*1)
	VMOVUPS 128(DI)(CX*1), Z2
	VFMADD231PS 128(AX)(CX*1), Z6, Z2
	VMOVUPS Z2, 128(DI)(CX*1)
	VMOVUPS 192(DI)(CX*1), Z3
	VFMADD231PS 192(AX)(CX*1), Z6, Z3
	VMOVUPS Z3, 192(DI)(CX*1)
	ADDQ $256, CX
	JMP  g5ax4

g5ax1:
	CMPQ CX, R13
	JGE  g5axt
	VMOVUPS (DI)(CX*1), Z0
	VFMADD231PS (AX)(CX*1), Z6, Z0
	VMOVUPS Z0, (DI)(CX*1)
	ADDQ $64, CX
	JMP  g5ax1

g5axt:
	KORTESTW K1, K1
	JZ   g5next
	VMOVUPS.Z (DI)(CX*1), K1, Z0
	VMOVUPS.Z (AX)(CX*1), K1, Z4
	VFMADD231PS Z4, Z6, Z0
	VMOVUPS Z0, K1, (DI)(CX*1)

g5next:
	ADDQ $4, R8
	JMP  g5loop

g5done:
	MOVQ $-1, bad+64(FP)
	VZEROUPPER
	RET

g5bad:
	MOVQ cols+32(FP), AX
	SUBQ AX, R8
	SHRQ $2, R8
	MOVQ R8, bad+64(FP)
	VZEROUPPER
	RET

// func gatherApplyAVX2(q, p, other *float32, k int, cols *int32, ncols int, w *float32, nrows int) (bad int)
// Same as gatherApplyAVX512 with 8-lane vectors; the tail mask is in Y7.
TEXT ·gatherApplyAVX2(SB), NOSPLIT, $0-72
	MOVQ q+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ other+16(FP), DX
	MOVQ k+24(FP), BX
	MOVQ cols+32(FP), R8
	MOVQ ncols+40(FP), R9
	MOVQ w+48(FP), R10
	MOVQ nrows+56(FP), R11
	MOVQ BX, CX
	ANDQ $7, CX
	MOVQ $8, AX
	SUBQ CX, AX
	LEAQ mask32<>(SB), CX
	VMOVDQU (CX)(AX*4), Y7
	MOVQ BX, R13
	ANDQ $-8, R13
	SHLQ $2, R13
	SHLQ $2, BX
	LEAQ (R8)(R9*4), R9
	LEAQ -96(R13), R12

g2loop:
	CMPQ R8, R9
	JAE  g2done
	MOVLQSX (R8), AX
	CMPQ AX, R11
	JAE  g2bad
	IMULQ BX, AX
	ADDQ DX, AX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ CX, CX

g2dot4:
	CMPQ CX, R12
	JGE  g2dot1
	VMOVUPS (AX)(CX*1), Y4
	VFMADD231PS (SI)(CX*1), Y4, Y0
	VMOVUPS 32(AX)(CX*1), Y5
	VFMADD231PS 32(SI)(CX*1), Y5, Y1
	VMOVUPS 64(AX)(CX*1), Y6
	VFMADD231PS 64(SI)(CX*1), Y6, Y2
	VMOVUPS 96(AX)(CX*1), Y8
	VFMADD231PS 96(SI)(CX*1), Y8, Y3
	ADDQ $128, CX
	JMP  g2dot4

g2dot1:
	CMPQ CX, R13
	JGE  g2dott
	VMOVUPS (AX)(CX*1), Y4
	VFMADD231PS (SI)(CX*1), Y4, Y0
	ADDQ $32, CX
	JMP  g2dot1

g2dott:
	VPTEST Y7, Y7
	JZ   g2red
	VMASKMOVPS (AX)(CX*1), Y7, Y4
	VMASKMOVPS (SI)(CX*1), Y7, Y5
	VFMADD231PS Y5, Y4, Y1

g2red:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	TESTQ R10, R10
	JZ   g2now
	VMULSS (R10), X0, X0
	ADDQ $4, R10

g2now:
	VBROADCASTSS X0, Y6
	XORQ CX, CX

g2ax4:
	CMPQ CX, R12
	JGE  g2ax1
	VMOVUPS (DI)(CX*1), Y0
	VFMADD231PS (AX)(CX*1), Y6, Y0
	VMOVUPS Y0, (DI)(CX*1)
	VMOVUPS 32(DI)(CX*1), Y1
	VFMADD231PS 32(AX)(CX*1), Y6, Y1
	VMOVUPS Y1, 32(DI)(CX*1)
	VMOVUPS 64(DI)(CX*1), Y2
	VFMADD231PS 64(AX)(CX*1), Y6, Y2
	VMOVUPS Y2, 64(DI)(CX*1)
	VMOVUPS 96(DI)(CX*1), Y3
	VFMADD231PS 96(AX)(CX*1), Y6, Y3
	VMOVUPS Y3, 96(DI)(CX*1)
	ADDQ $128, CX
	JMP  g2ax4

g2ax1:
	CMPQ CX, R13
	JGE  g2axt
	VMOVUPS (DI)(CX*1), Y0
	VFMADD231PS (AX)(CX*1), Y6, Y0
	VMOVUPS Y0, (DI)(CX*1)
	ADDQ $32, CX
	JMP  g2ax1

g2axt:
	VPTEST Y7, Y7
	JZ   g2next
	VMASKMOVPS (DI)(CX*1), Y7, Y0
	VMASKMOVPS (AX)(CX*1), Y7, Y4
	VFMADD231PS Y4, Y6, Y0
	VMASKMOVPS Y0, Y7, (DI)(CX*1)

g2next:
	ADDQ $4, R8
	JMP  g2loop

g2done:
	MOVQ $-1, bad+64(FP)
	VZEROUPPER
	RET

g2bad:
	MOVQ cols+32(FP), AX
	SUBQ AX, R8
	SHRQ $2, R8
	MOVQ R8, bad+64(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// AVX2 Cholesky kernels (the AVX-512 ones, which keep their vectors at
// 8-aligned columns, are further down).
//
// cholUpdateAVX2 (see cholUpdateRel): c[i·ld+j] -= Σ_{r<depth}
// u[r·ld+i]·u[r·ld+j] for i < mr, i ≤ j < mc, in strips of 4 rows (then
// single rows) that run from the strip's first diagonal entry to column
// mc, the last vector masked.
//
// Registers: R13 &c[i][i], BX &u[0][i], R8 ld in bytes, R9 rows left,
// R10 columns left from the diagonal of row i, R11 depth·ld bytes, CX
// columns left in the strip, DX byte offset of the vector from the
// diagonal, SI &u[r][i], DI &u[depth][i], AX scratch.

// func cholUpdateAVX2(c, u *float64, ld, mr, mc, depth int)
// Strips of 4 rows × 8 columns (Y0-Y7), tail masks in Y14/Y15 from mask64
// (R12).
TEXT ·cholUpdateAVX2(SB), NOSPLIT, $0-48
	MOVQ c+0(FP), R13
	MOVQ u+8(FP), BX
	MOVQ ld+16(FP), R8
	SHLQ $3, R8
	MOVQ mr+24(FP), R9
	MOVQ mc+32(FP), R10
	MOVQ depth+40(FP), R11
	IMULQ R8, R11
	LEAQ mask64<>(SB), R12

c2row4:
	CMPQ R9, $4
	JLT  c2row1
	MOVQ R10, CX
	XORQ DX, DX

c2vec4:
	TESTQ CX, CX
	JLE  c2next4
	MOVQ R12, AX
	CMPQ CX, $8
	JGE  c2mask4
	MOVQ $8, AX
	SUBQ CX, AX
	LEAQ (R12)(AX*8), AX

c2mask4:
	VMOVDQU (AX), Y14
	VMOVDQU 32(AX), Y15
	LEAQ (R13)(DX*1), AX
	VMASKMOVPD (AX), Y14, Y0
	VMASKMOVPD 32(AX), Y15, Y1
	VMASKMOVPD (AX)(R8*1), Y14, Y2
	VMASKMOVPD 32(AX)(R8*1), Y15, Y3
	VMASKMOVPD (AX)(R8*2), Y14, Y4
	VMASKMOVPD 32(AX)(R8*2), Y15, Y5
	LEAQ (AX)(R8*2), AX
	VMASKMOVPD (AX)(R8*1), Y14, Y6
	VMASKMOVPD 32(AX)(R8*1), Y15, Y7
	MOVQ BX, SI
	LEAQ (BX)(R11*1), DI

c2r4:
	VMASKMOVPD (SI)(DX*1), Y14, Y8
	VMASKMOVPD 32(SI)(DX*1), Y15, Y9
	VBROADCASTSD (SI), Y10
	VFNMADD231PD Y8, Y10, Y0
	VFNMADD231PD Y9, Y10, Y1
	VBROADCASTSD 8(SI), Y11
	VFNMADD231PD Y8, Y11, Y2
	VFNMADD231PD Y9, Y11, Y3
	VBROADCASTSD 16(SI), Y12
	VFNMADD231PD Y8, Y12, Y4
	VFNMADD231PD Y9, Y12, Y5
	VBROADCASTSD 24(SI), Y13
	VFNMADD231PD Y8, Y13, Y6
	VFNMADD231PD Y9, Y13, Y7
	ADDQ R8, SI
	CMPQ SI, DI
	JNE  c2r4

	LEAQ (R13)(DX*1), AX
	VMASKMOVPD Y0, Y14, (AX)
	VMASKMOVPD Y1, Y15, 32(AX)
	VMASKMOVPD Y2, Y14, (AX)(R8*1)
	VMASKMOVPD Y3, Y15, 32(AX)(R8*1)
	VMASKMOVPD Y4, Y14, (AX)(R8*2)
	VMASKMOVPD Y5, Y15, 32(AX)(R8*2)
	LEAQ (AX)(R8*2), AX
	VMASKMOVPD Y6, Y14, (AX)(R8*1)
	VMASKMOVPD Y7, Y15, 32(AX)(R8*1)
	ADDQ $64, DX
	SUBQ $8, CX
	JMP  c2vec4

c2next4:
	LEAQ 32(R13)(R8*4), R13
	ADDQ $32, BX
	SUBQ $4, R9
	SUBQ $4, R10
	JMP  c2row4

c2row1:
	TESTQ R9, R9
	JLE  c2done
	MOVQ R10, CX
	XORQ DX, DX

c2vec1:
	TESTQ CX, CX
	JLE  c2next1
	MOVQ R12, AX
	CMPQ CX, $8
	JGE  c2mask1
	MOVQ $8, AX
	SUBQ CX, AX
	LEAQ (R12)(AX*8), AX

c2mask1:
	VMOVDQU (AX), Y14
	VMOVDQU 32(AX), Y15
	LEAQ (R13)(DX*1), AX
	VMASKMOVPD (AX), Y14, Y0
	VMASKMOVPD 32(AX), Y15, Y1
	MOVQ BX, SI
	LEAQ (BX)(R11*1), DI

c2r1:
	VMASKMOVPD (SI)(DX*1), Y14, Y8
	VMASKMOVPD 32(SI)(DX*1), Y15, Y9
	VBROADCASTSD (SI), Y10
	VFNMADD231PD Y8, Y10, Y0
	VFNMADD231PD Y9, Y10, Y1
	ADDQ R8, SI
	CMPQ SI, DI
	JNE  c2r1

	LEAQ (R13)(DX*1), AX
	VMASKMOVPD Y0, Y14, (AX)
	VMASKMOVPD Y1, Y15, 32(AX)
	ADDQ $64, DX
	SUBQ $8, CX
	JMP  c2vec1

c2next1:
	LEAQ 8(R13)(R8*1), R13
	ADDQ $8, BX
	DECQ R9
	DECQ R10
	JMP  c2row1

c2done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// cholPanelAVX2: factor rows j0 ≤ j < j1 of U (see cholPanelGo). Each row
// is updated from the panel's earlier rows with the single-row strip of
// cholUpdateAVX2, then its pivot is checked, square-rooted and the rest of
// the row scaled by its inverse.
//
// Registers: R13 &a[j][j], BX &a[j0][j], R8 ld bytes, R9 rows left,
// R10 columns left (k − j), R11 j − j0, CX/DX/SI/DI/AX as in cholUpdate.
// The update runs four independent chains of multiply-adds (the panel is
// latency-bound: each row waits for the previous one), and the pivot's
// square root and reciprocal are computed in parallel: 1/√d = √d · (1/d).

DATA one64<>+0(SB)/8, $1.0
GLOBL one64<>(SB), RODATA|NOPTR, $8
DATA inf64<>+0(SB)/8, $0x7ff0000000000000
GLOBL inf64<>(SB), RODATA|NOPTR, $8

// func cholPanelAVX2(a *float64, k, j0, j1 int) (fail int)
// 8-column strips in two ymm registers, tail masks in Y14/Y15 from mask64
// (R12).
TEXT ·cholPanelAVX2(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ k+8(FP), R10
	MOVQ R10, R8
	SHLQ $3, R8
	MOVQ j0+16(FP), DX
	MOVQ j1+24(FP), R9
	SUBQ DX, R9
	MOVQ DX, R13
	IMULQ R8, R13
	ADDQ AX, R13
	LEAQ (R13)(DX*8), R13
	MOVQ R13, BX
	SUBQ DX, R10
	XORQ R11, R11
	LEAQ mask64<>(SB), R12

p2row:
	TESTQ R9, R9
	JLE  p2ok
	TESTQ R11, R11
	JZ   p2pivot
	MOVQ R10, CX
	XORQ DX, DX

p2vec:
	TESTQ CX, CX
	JLE  p2pivot
	MOVQ R12, AX
	CMPQ CX, $8
	JGE  p2mask
	MOVQ $8, AX
	SUBQ CX, AX
	LEAQ (R12)(AX*8), AX

p2mask:
	VMOVDQU (AX), Y14
	VMOVDQU 32(AX), Y15
	LEAQ (R13)(DX*1), AX
	VMASKMOVPD (AX), Y14, Y0
	VMASKMOVPD 32(AX), Y15, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	MOVQ BX, SI
	MOVQ R11, DI
	IMULQ R8, DI
	ADDQ BX, DI
	MOVQ R11, AX
	ANDQ $3, AX
	JZ   p2r4

p2r1:
	VMASKMOVPD (SI)(DX*1), Y14, Y8
	VMASKMOVPD 32(SI)(DX*1), Y15, Y9
	VBROADCASTSD (SI), Y10
	VFNMADD231PD Y8, Y10, Y0
	VFNMADD231PD Y9, Y10, Y1
	ADDQ R8, SI
	DECQ AX
	JNZ  p2r1

p2r4:
	CMPQ SI, DI
	JEQ  p2rsum
	VMASKMOVPD (SI)(DX*1), Y14, Y8
	VMASKMOVPD 32(SI)(DX*1), Y15, Y9
	VBROADCASTSD (SI), Y10
	VFNMADD231PD Y8, Y10, Y0
	VFNMADD231PD Y9, Y10, Y1
	ADDQ R8, SI
	VMASKMOVPD (SI)(DX*1), Y14, Y11
	VMASKMOVPD 32(SI)(DX*1), Y15, Y12
	VBROADCASTSD (SI), Y13
	VFNMADD231PD Y11, Y13, Y2
	VFNMADD231PD Y12, Y13, Y3
	ADDQ R8, SI
	VMASKMOVPD (SI)(DX*1), Y14, Y8
	VMASKMOVPD 32(SI)(DX*1), Y15, Y9
	VBROADCASTSD (SI), Y10
	VFNMADD231PD Y8, Y10, Y4
	VFNMADD231PD Y9, Y10, Y5
	ADDQ R8, SI
	VMASKMOVPD (SI)(DX*1), Y14, Y11
	VMASKMOVPD 32(SI)(DX*1), Y15, Y12
	VBROADCASTSD (SI), Y13
	VFNMADD231PD Y11, Y13, Y6
	VFNMADD231PD Y12, Y13, Y7
	ADDQ R8, SI
	JMP  p2r4

p2rsum:
	VADDPD Y2, Y0, Y0
	VADDPD Y3, Y1, Y1
	VADDPD Y6, Y4, Y4
	VADDPD Y7, Y5, Y5
	VADDPD Y4, Y0, Y0
	VADDPD Y5, Y1, Y1
	LEAQ (R13)(DX*1), AX
	VMASKMOVPD Y0, Y14, (AX)
	VMASKMOVPD Y1, Y15, 32(AX)
	ADDQ $64, DX
	SUBQ $8, CX
	JMP  p2vec

p2pivot:
	VMOVSD (R13), X0
	VXORPD X2, X2, X2
	VUCOMISD X2, X0
	JLS  p2fail
	VUCOMISD inf64<>(SB), X0
	JCC  p2fail
	VSQRTSD X0, X0, X3
	VMOVSD one64<>(SB), X1
	VDIVSD X0, X1, X1
	VMULSD X3, X1, X1
	VMOVSD X3, (R13)
	VBROADCASTSD X1, Y1
	LEAQ -1(R10), CX
	LEAQ 8(R13), AX

p2scale:
	TESTQ CX, CX
	JLE  p2next
	MOVQ R12, DX
	CMPQ CX, $8
	JGE  p2smask
	MOVQ $8, DX
	SUBQ CX, DX
	LEAQ (R12)(DX*8), DX

p2smask:
	VMOVDQU (DX), Y14
	VMOVDQU 32(DX), Y15
	VMASKMOVPD (AX), Y14, Y0
	VMASKMOVPD 32(AX), Y15, Y2
	VMULPD Y1, Y0, Y0
	VMULPD Y1, Y2, Y2
	VMASKMOVPD Y0, Y14, (AX)
	VMASKMOVPD Y2, Y15, 32(AX)
	ADDQ $64, AX
	SUBQ $8, CX
	JMP  p2scale

p2next:
	LEAQ 8(R13)(R8*1), R13
	ADDQ $8, BX
	INCQ R11
	DECQ R9
	DECQ R10
	JMP  p2row

p2ok:
	MOVQ $-1, fail+32(FP)
	VZEROUPPER
	RET

p2fail:
	MOVQ j1+24(FP), AX
	SUBQ R9, AX
	MOVQ AX, fail+32(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// gatherRows: the panel fill of normalEq.add (see gatherRowsGo). Row r:
// x_r = float64(other[cols[r]]), b += v[r]·x_r, wx_r = w[r]·x_r (if w).
// Whole vectors are stored: x and wx rows are kp ≥ roundup(k, 8) wide and
// b is padded, so the tail vector (its load masked) writes zeros there.
// The row four ahead (cols[r+4], if any) is prefetched into L1.
//
// Registers: DI &x[r][0], R12 &wx[r][0], SI b, DX other, R8 &cols[r],
// R9 rows left, R10 &w[r] (0: no weights), R11 &v[r], BX row bytes of
// other (k·4), R13 elements in whole vectors, CX element index, AX &y[0].
// The kp and ncols argument slots are turned into kp·8 and &cols[ncols].

// func gatherRowsAVX512(x, wx, b *float64, kp int, other *float32, k int, cols *int32, n, ncols int, w, v *float32, nrows int) (bad int)
TEXT ·gatherRowsAVX512(SB), NOSPLIT, $0-104
	MOVQ x+0(FP), DI
	MOVQ wx+8(FP), R12
	MOVQ b+16(FP), SI
	SHLQ $3, kp+24(FP)
	MOVQ other+32(FP), DX
	MOVQ k+40(FP), BX
	MOVQ cols+48(FP), R8
	MOVQ n+56(FP), R9
	MOVQ ncols+64(FP), AX
	LEAQ (R8)(AX*4), AX
	MOVQ AX, ncols+64(FP)
	MOVQ w+72(FP), R10
	MOVQ v+80(FP), R11
	MOVQ BX, CX
	ANDQ $7, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	MOVQ BX, R13
	ANDQ $-8, R13
	SHLQ $2, BX

r5row:
	TESTQ R9, R9
	JLE  r5done
	LEAQ 16(R8), AX
	CMPQ AX, ncols+64(FP)
	JAE  r5nopf
	MOVLQSX (AX), AX
	CMPQ AX, nrows+88(FP)
	JAE  r5nopf
	IMULQ BX, AX
	ADDQ DX, AX
	XORQ CX, CX

r5pf:
	PREFETCHT0 (AX)(CX*1)
	ADDQ $64, CX
	CMPQ CX, BX
	JLT  r5pf
	PREFETCHT0 -1(AX)(BX*1)

r5nopf:
	MOVLQSX (R8), AX
	CMPQ AX, nrows+88(FP)
	JAE  r5bad
	IMULQ BX, AX
	ADDQ DX, AX
	VCVTSS2SD (R11), X2, X2
	VBROADCASTSD X2, Z2
	TESTQ R10, R10
	JZ   r5vec
	VCVTSS2SD (R10), X3, X3
	VBROADCASTSD X3, Z3
	XORQ CX, CX

r5wvec:
	CMPQ CX, R13
	JGE  r5wtail
	VCVTPS2PD (AX)(CX*4), Z0
	VMOVUPD Z0, (DI)(CX*8)
	VMOVUPD (SI)(CX*8), Z1
	VFMADD231PD Z0, Z2, Z1
	VMOVUPD Z1, (SI)(CX*8)
	VMULPD Z0, Z3, Z4
	VMOVUPD Z4, (R12)(CX*8)
	ADDQ $8, CX
	JMP  r5wvec

r5wtail:
	KORTESTW K1, K1
	JZ   r5next
	VCVTPS2PD.Z (AX)(CX*4), K1, Z0
	VMOVUPD Z0, (DI)(CX*8)
	VMOVUPD (SI)(CX*8), Z1
	VFMADD231PD Z0, Z2, Z1
	VMOVUPD Z1, (SI)(CX*8)
	VMULPD Z0, Z3, Z4
	VMOVUPD Z4, (R12)(CX*8)
	JMP  r5next

r5vec:
	XORQ CX, CX

r5vloop:
	CMPQ CX, R13
	JGE  r5vtail
	VCVTPS2PD (AX)(CX*4), Z0
	VMOVUPD Z0, (DI)(CX*8)
	VMOVUPD (SI)(CX*8), Z1
	VFMADD231PD Z0, Z2, Z1
	VMOVUPD Z1, (SI)(CX*8)
	ADDQ $8, CX
	JMP  r5vloop

r5vtail:
	KORTESTW K1, K1
	JZ   r5next
	VCVTPS2PD.Z (AX)(CX*4), K1, Z0
	VMOVUPD Z0, (DI)(CX*8)
	VMOVUPD (SI)(CX*8), Z1
	VFMADD231PD Z0, Z2, Z1
	VMOVUPD Z1, (SI)(CX*8)

r5next:
	ADDQ kp+24(FP), DI
	ADDQ kp+24(FP), R12
	ADDQ $4, R8
	ADDQ $4, R11
	TESTQ R10, R10
	JZ   r5nw
	ADDQ $4, R10

r5nw:
	DECQ R9
	JMP  r5row

r5done:
	MOVQ $-1, bad+96(FP)
	VZEROUPPER
	RET

r5bad:
	MOVQ cols+48(FP), AX
	SUBQ AX, R8
	SHRQ $2, R8
	MOVQ R8, bad+96(FP)
	VZEROUPPER
	RET

// func gatherRowsAVX2(x, wx, b *float64, kp int, other *float32, k int, cols *int32, n, ncols int, w, v *float32, nrows int) (bad int)
// As gatherRowsAVX512 with 4-wide vectors; the tail load mask is in X7.
TEXT ·gatherRowsAVX2(SB), NOSPLIT, $0-104
	MOVQ x+0(FP), DI
	MOVQ wx+8(FP), R12
	MOVQ b+16(FP), SI
	SHLQ $3, kp+24(FP)
	MOVQ other+32(FP), DX
	MOVQ k+40(FP), BX
	MOVQ cols+48(FP), R8
	MOVQ n+56(FP), R9
	MOVQ ncols+64(FP), AX
	LEAQ (R8)(AX*4), AX
	MOVQ AX, ncols+64(FP)
	MOVQ w+72(FP), R10
	MOVQ v+80(FP), R11
	MOVQ BX, CX
	ANDQ $3, CX
	MOVQ $8, AX
	SUBQ CX, AX
	LEAQ mask32<>(SB), CX
	VMOVDQU (CX)(AX*4), X7
	MOVQ BX, R13
	ANDQ $-4, R13
	SHLQ $2, BX

r2row:
	TESTQ R9, R9
	JLE  r2done
	LEAQ 16(R8), AX
	CMPQ AX, ncols+64(FP)
	JAE  r2nopf
	MOVLQSX (AX), AX
	CMPQ AX, nrows+88(FP)
	JAE  r2nopf
	IMULQ BX, AX
	ADDQ DX, AX
	XORQ CX, CX

r2pf:
	PREFETCHT0 (AX)(CX*1)
	ADDQ $64, CX
	CMPQ CX, BX
	JLT  r2pf
	PREFETCHT0 -1(AX)(BX*1)

r2nopf:
	MOVLQSX (R8), AX
	CMPQ AX, nrows+88(FP)
	JAE  r2bad
	IMULQ BX, AX
	ADDQ DX, AX
	VCVTSS2SD (R11), X2, X2
	VBROADCASTSD X2, Y2
	TESTQ R10, R10
	JZ   r2nw0
	VCVTSS2SD (R10), X3, X3
	VBROADCASTSD X3, Y3

r2nw0:
	XORQ CX, CX

r2loop:
	CMPQ CX, R13
	JGE  r2tail
	VCVTPS2PD (AX)(CX*4), Y0
	VMOVUPD Y0, (DI)(CX*8)
	VMOVUPD (SI)(CX*8), Y1
	VFMADD231PD Y0, Y2, Y1
	VMOVUPD Y1, (SI)(CX*8)
	TESTQ R10, R10
	JZ   r2nw1
	VMULPD Y0, Y3, Y4
	VMOVUPD Y4, (R12)(CX*8)

r2nw1:
	ADDQ $4, CX
	JMP  r2loop

r2tail:
	VPTEST X7, X7
	JZ   r2next
	VMASKMOVPS (AX)(CX*4), X7, X0
	VCVTPS2PD X0, Y0
	VMOVUPD Y0, (DI)(CX*8)
	VMOVUPD (SI)(CX*8), Y1
	VFMADD231PD Y0, Y2, Y1
	VMOVUPD Y1, (SI)(CX*8)
	TESTQ R10, R10
	JZ   r2next
	VMULPD Y0, Y3, Y4
	VMOVUPD Y4, (R12)(CX*8)

r2next:
	ADDQ kp+24(FP), DI
	ADDQ kp+24(FP), R12
	ADDQ $4, R8
	ADDQ $4, R11
	TESTQ R10, R10
	JZ   r2nw
	ADDQ $4, R10

r2nw:
	DECQ R9
	JMP  r2row

r2done:
	MOVQ $-1, bad+96(FP)
	VZEROUPPER
	RET

r2bad:
	MOVQ cols+48(FP), AX
	SUBQ AX, R8
	SHRQ $2, R8
	MOVQ R8, bad+96(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// cholSolveU: b ← U⁻¹ U⁻ᵀ b for the upper triangle U of the k×k row-major a
// (see cholSolveUGo), by blocks of 8 rows so that the sequential part of
// each triangular solve is a chain of register operations:
//
// Forward (Uᵀz = b), block p0: the block's rows U[p0+q][p0:p0+8] are held
// in Z0-Z7; step q takes z_q = t_q/U_qq (lane q of t, broadcast by VPERMPD)
// and subtracts z_q·U[p0+q] from the later lanes of t; then the rest of b
// gets the rank-8 update b[p0+8:] -= Σ_q z_q U[p0+q][p0+8:].
//
// Backward (U x = z), blocks from the last: t = z_block − U[block][i1:]·x[i1:]
// (eight dot products, summed by transposing the accumulators), then the
// block's 8×8 triangle is solved bottom-up with its columns (the transposed
// rows) in Z0-Z7.
//
// Registers: SI a, R8 ld bytes, BX 3·ld, DI b, R9 k, R10 block start,
// CX rows in the block, R11 &a[p0][p0], R12/R13 row pointers, AX/DX scratch.
// Z8 t, Z9 lane index, Z10 1/diagonal, Z12 result, Z31 ones; K1 the
// block's lanes.

DATA ones64<>+0(SB)/8, $1.0
GLOBL ones64<>(SB), RODATA|NOPTR, $8

// Load rows q < CX of the block (R11, stride R8) into Z0-Z7, lanes K1,
// zeros elsewhere; jumps to done after the last row.
#define LOADBLOCK(done) \
	VPXORQ Z1, Z1, Z1; \
	VPXORQ Z2, Z2, Z2; \
	VPXORQ Z3, Z3, Z3; \
	VPXORQ Z4, Z4, Z4; \
	VPXORQ Z5, Z5, Z5; \
	VPXORQ Z6, Z6, Z6; \
	VPXORQ Z7, Z7, Z7; \
	VMOVUPD.Z (R11), K1, Z0; \
	CMPQ CX, $1; \
	JLE  done; \
	VMOVUPD.Z (R11)(R8*1), K1, Z1; \
	CMPQ CX, $2; \
	JLE  done; \
	VMOVUPD.Z (R11)(R8*2), K1, Z2; \
	CMPQ CX, $3; \
	JLE  done; \
	VMOVUPD.Z (R11)(BX*1), K1, Z3; \
	CMPQ CX, $4; \
	JLE  done; \
	LEAQ (R11)(R8*4), AX; \
	VMOVUPD.Z (AX), K1, Z4; \
	CMPQ CX, $5; \
	JLE  done; \
	VMOVUPD.Z (AX)(R8*1), K1, Z5; \
	CMPQ CX, $6; \
	JLE  done; \
	VMOVUPD.Z (AX)(R8*2), K1, Z6; \
	CMPQ CX, $7; \
	JLE  done; \
	VMOVUPD.Z (AX)(BX*1), K1, Z7

// Z10 = 1 / (lane q of Zq for q = 0..7): the block's diagonal.
#define INVDIAG \
	VMOVAPD Z0, Z11; \
	MOVL $0x02, AX; \
	KMOVW AX, K2; \
	VMOVAPD Z1, K2, Z11; \
	MOVL $0x04, AX; \
	KMOVW AX, K2; \
	VMOVAPD Z2, K2, Z11; \
	MOVL $0x08, AX; \
	KMOVW AX, K2; \
	VMOVAPD Z3, K2, Z11; \
	MOVL $0x10, AX; \
	KMOVW AX, K2; \
	VMOVAPD Z4, K2, Z11; \
	MOVL $0x20, AX; \
	KMOVW AX, K2; \
	VMOVAPD Z5, K2, Z11; \
	MOVL $0x40, AX; \
	KMOVW AX, K2; \
	VMOVAPD Z6, K2, Z11; \
	MOVL $0x80, AX; \
	KMOVW AX, K2; \
	VMOVAPD Z7, K2, Z11; \
	VDIVPD Z11, Z31, Z10

// One step of a block solve: s = t_q · (1/U_qq) broadcast into ZS, lane q
// of the result set to it, and t -= s·VQ on the lanes in MASK.
#define SOLVESTEP(Q, QBIT, MASK, VQ, ZS) \
	MOVQ $Q, AX; \
	VPBROADCASTQ AX, Z9; \
	VPERMPD Z8, Z9, ZS; \
	VPERMPD Z10, Z9, Z11; \
	VMULPD Z11, ZS, ZS; \
	MOVL $QBIT, AX; \
	KMOVW AX, K2; \
	VMOVAPD ZS, K2, Z12; \
	MOVL $MASK, AX; \
	KMOVW AX, K3; \
	VFNMADD231PD VQ, ZS, K3, Z8

// Transpose the 8×8 block of doubles in Z0-Z7 (rows → columns); clobbers
// Z16-Z27.
#define TRANSPOSE8 \
	VUNPCKLPD Z1, Z0, Z16; \
	VUNPCKHPD Z1, Z0, Z17; \
	VUNPCKLPD Z3, Z2, Z18; \
	VUNPCKHPD Z3, Z2, Z19; \
	VUNPCKLPD Z5, Z4, Z20; \
	VUNPCKHPD Z5, Z4, Z21; \
	VUNPCKLPD Z7, Z6, Z22; \
	VUNPCKHPD Z7, Z6, Z23; \
	VSHUFF64X2 $0x88, Z18, Z16, Z24; \
	VSHUFF64X2 $0xDD, Z18, Z16, Z25; \
	VSHUFF64X2 $0x88, Z22, Z20, Z26; \
	VSHUFF64X2 $0xDD, Z22, Z20, Z27; \
	VSHUFF64X2 $0x88, Z26, Z24, Z0; \
	VSHUFF64X2 $0xDD, Z26, Z24, Z4; \
	VSHUFF64X2 $0x88, Z27, Z25, Z2; \
	VSHUFF64X2 $0xDD, Z27, Z25, Z6; \
	VSHUFF64X2 $0x88, Z19, Z17, Z24; \
	VSHUFF64X2 $0xDD, Z19, Z17, Z25; \
	VSHUFF64X2 $0x88, Z23, Z21, Z26; \
	VSHUFF64X2 $0xDD, Z23, Z21, Z27; \
	VSHUFF64X2 $0x88, Z26, Z24, Z1; \
	VSHUFF64X2 $0xDD, Z26, Z24, Z5; \
	VSHUFF64X2 $0x88, Z27, Z25, Z3; \
	VSHUFF64X2 $0xDD, Z27, Z25, Z7

// K1 = (1 << CX) − 1 for CX ≤ 8.
#define BLOCKMASK \
	MOVL $1, AX; \
	SHLL CX, AX; \
	DECL AX; \
	KMOVW AX, K1

// func cholSolveUAVX512(a *float64, k int, b *float64)
TEXT ·cholSolveUAVX512(SB), NOSPLIT, $0-24
	MOVQ a+0(FP), SI
	MOVQ k+8(FP), R9
	MOVQ b+16(FP), DI
	MOVQ R9, R8
	SHLQ $3, R8
	LEAQ (R8)(R8*2), BX
	VBROADCASTSD ones64<>(SB), Z31
	XORQ R10, R10

fblock:
	CMPQ R10, R9
	JGE  fdone
	MOVQ R9, CX
	SUBQ R10, CX
	CMPQ CX, $8
	JLE  fnb
	MOVQ $8, CX

fnb:
	BLOCKMASK
	MOVQ R10, AX
	IMULQ R8, AX
	ADDQ SI, AX
	LEAQ (AX)(R10*8), R11
	VMOVUPD.Z (DI)(R10*8), K1, Z8
	VPXORQ Z12, Z12, Z12
	LOADBLOCK(floaded)

floaded:
	INVDIAG
	SOLVESTEP(0, 0x01, 0xfe, Z0, Z16)
	CMPQ CX, $1
	JLE  fstore
	SOLVESTEP(1, 0x02, 0xfc, Z1, Z17)
	CMPQ CX, $2
	JLE  fstore
	SOLVESTEP(2, 0x04, 0xf8, Z2, Z18)
	CMPQ CX, $3
	JLE  fstore
	SOLVESTEP(3, 0x08, 0xf0, Z3, Z19)
	CMPQ CX, $4
	JLE  fstore
	SOLVESTEP(4, 0x10, 0xe0, Z4, Z20)
	CMPQ CX, $5
	JLE  fstore
	SOLVESTEP(5, 0x20, 0xc0, Z5, Z21)
	CMPQ CX, $6
	JLE  fstore
	SOLVESTEP(6, 0x40, 0x80, Z6, Z22)
	CMPQ CX, $7
	JLE  fstore
	SOLVESTEP(7, 0x80, 0x00, Z7, Z23)

fstore:
	VMOVUPD Z12, K1, (DI)(R10*8)
	// Rank-8 update of b[p0+8:] (only after a whole block).
	MOVQ R9, CX
	SUBQ R10, CX
	SUBQ $8, CX
	JLE  fnext
	LEAQ 64(R11), R13
	LEAQ (R13)(R8*4), R12
	LEAQ 64(DI)(R10*8), DX

fupd:
	CMPQ CX, $8
	JLT  fupdtail
	VMOVUPD (DX), Z0
	VPXORQ Z1, Z1, Z1
	VFNMADD231PD (R13), Z16, Z0
	VFNMADD231PD (R12), Z20, Z1
	VFNMADD231PD (R13)(R8*1), Z17, Z0
	VFNMADD231PD (R12)(R8*1), Z21, Z1
	VFNMADD231PD (R13)(R8*2), Z18, Z0
	VFNMADD231PD (R12)(R8*2), Z22, Z1
	VFNMADD231PD (R13)(BX*1), Z19, Z0
	VFNMADD231PD (R12)(BX*1), Z23, Z1
	VADDPD Z1, Z0, Z0
	VMOVUPD Z0, (DX)
	ADDQ $64, DX
	ADDQ $64, R13
	ADDQ $64, R12
	SUBQ $8, CX
	JMP  fupd

fupdtail:
	TESTQ CX, CX
	JLE  fnext
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K4
	VMOVUPD.Z (DX), K4, Z0
	VPXORQ Z1, Z1, Z1
	VFNMADD231PD (R13), Z16, K4, Z0
	VFNMADD231PD (R12), Z20, K4, Z1
	VFNMADD231PD (R13)(R8*1), Z17, K4, Z0
	VFNMADD231PD (R12)(R8*1), Z21, K4, Z1
	VFNMADD231PD (R13)(R8*2), Z18, K4, Z0
	VFNMADD231PD (R12)(R8*2), Z22, K4, Z1
	VFNMADD231PD (R13)(BX*1), Z19, K4, Z0
	VFNMADD231PD (R12)(BX*1), Z23, K4, Z1
	VADDPD Z1, Z0, Z0
	VMOVUPD Z0, K4, (DX)

fnext:
	ADDQ $8, R10
	JMP  fblock

fdone:
	// Backward, from the last block (the only one that may be partial).
	MOVQ R9, R10
	DECQ R10
	ANDQ $-8, R10

bblock:
	CMPQ R10, $0
	JLT  bdone
	MOVQ R9, CX
	SUBQ R10, CX
	CMPQ CX, $8
	JLE  bnb
	MOVQ $8, CX

bnb:
	BLOCKMASK
	MOVQ R10, AX
	IMULQ R8, AX
	ADDQ SI, AX
	LEAQ (AX)(R10*8), R11
	VMOVUPD.Z (DI)(R10*8), K1, Z8
	VPXORQ Z12, Z12, Z12
	MOVQ R9, DX
	SUBQ R10, DX
	SUBQ $8, DX
	JLE  bdiag
	// t -= U[block][i0+8:] · x[i0+8:]
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	VPXORQ Z4, Z4, Z4
	VPXORQ Z5, Z5, Z5
	VPXORQ Z6, Z6, Z6
	VPXORQ Z7, Z7, Z7
	LEAQ 64(R11), R13
	LEAQ (R13)(R8*4), R12
	LEAQ 64(DI)(R10*8), AX

bdot:
	CMPQ DX, $8
	JLT  bdottail
	VMOVUPD (AX), Z9
	VFMADD231PD (R13), Z9, Z0
	VFMADD231PD (R13)(R8*1), Z9, Z1
	VFMADD231PD (R13)(R8*2), Z9, Z2
	VFMADD231PD (R13)(BX*1), Z9, Z3
	VFMADD231PD (R12), Z9, Z4
	VFMADD231PD (R12)(R8*1), Z9, Z5
	VFMADD231PD (R12)(R8*2), Z9, Z6
	VFMADD231PD (R12)(BX*1), Z9, Z7
	ADDQ $64, AX
	ADDQ $64, R13
	ADDQ $64, R12
	SUBQ $8, DX
	JMP  bdot

bdottail:
	TESTQ DX, DX
	JLE  breduce
	MOVQ DX, CX
	MOVL $1, DX
	SHLL CX, DX
	DECL DX
	KMOVW DX, K4
	MOVQ $8, CX
	VMOVUPD.Z (AX), K4, Z9
	VFMADD231PD (R13), Z9, K4, Z0
	VFMADD231PD (R13)(R8*1), Z9, K4, Z1
	VFMADD231PD (R13)(R8*2), Z9, K4, Z2
	VFMADD231PD (R13)(BX*1), Z9, K4, Z3
	VFMADD231PD (R12), Z9, K4, Z4
	VFMADD231PD (R12)(R8*1), Z9, K4, Z5
	VFMADD231PD (R12)(R8*2), Z9, K4, Z6
	VFMADD231PD (R12)(BX*1), Z9, K4, Z7

breduce:
	TRANSPOSE8
	VADDPD Z1, Z0, Z0
	VADDPD Z3, Z2, Z2
	VADDPD Z5, Z4, Z4
	VADDPD Z7, Z6, Z6
	VADDPD Z2, Z0, Z0
	VADDPD Z6, Z4, Z4
	VADDPD Z4, Z0, Z0
	VSUBPD Z0, Z8, Z8

bdiag:
	LOADBLOCK(bloaded)

bloaded:
	TRANSPOSE8
	INVDIAG
	CMPQ CX, $8
	JEQ  b7
	CMPQ CX, $7
	JEQ  b6
	CMPQ CX, $6
	JEQ  b5
	CMPQ CX, $5
	JEQ  b4
	CMPQ CX, $4
	JEQ  b3
	CMPQ CX, $3
	JEQ  b2
	CMPQ CX, $2
	JEQ  b1
	JMP  b0

b7:
	SOLVESTEP(7, 0x80, 0x7f, Z7, Z13)

b6:
	SOLVESTEP(6, 0x40, 0x3f, Z6, Z13)

b5:
	SOLVESTEP(5, 0x20, 0x1f, Z5, Z13)

b4:
	SOLVESTEP(4, 0x10, 0x0f, Z4, Z13)

b3:
	SOLVESTEP(3, 0x08, 0x07, Z3, Z13)

b2:
	SOLVESTEP(2, 0x04, 0x03, Z2, Z13)

b1:
	SOLVESTEP(1, 0x02, 0x01, Z1, Z13)

b0:
	SOLVESTEP(0, 0x01, 0x00, Z0, Z13)
	VMOVUPD Z12, K1, (DI)(R10*8)
	SUBQ $8, R10
	JMP  bblock

bdone:
	VZEROUPPER
	RET

// func cholMirrorAVX512(a *float64, k int)
// Copies the lower triangle of the k×k row-major a into the upper one for
// the whole 8×8 blocks (rows and columns below k rounded down to 8): each
// block at or below the diagonal is loaded, transposed and stored at its
// mirror position (a diagonal block thereby also gets its upper triangle
// copied into its lower one, which cholSolve no longer reads).
//
// Registers: SI a, R8 ld bytes, BX 3·ld, R10 k rounded down to 8, R11 i0,
// R12 j0, AX source, DX destination.
TEXT ·cholMirrorAVX512(SB), NOSPLIT, $0-16
	MOVQ a+0(FP), SI
	MOVQ k+8(FP), R9
	MOVQ R9, R8
	SHLQ $3, R8
	LEAQ (R8)(R8*2), BX
	MOVQ R9, R10
	ANDQ $-8, R10
	XORQ R11, R11

mrow:
	CMPQ R11, R10
	JGE  mdone
	XORQ R12, R12

mcol:
	CMPQ R12, R11
	JG   mnext
	MOVQ R11, AX
	IMULQ R8, AX
	ADDQ SI, AX
	LEAQ (AX)(R12*8), AX
	VMOVUPD (AX), Z0
	VMOVUPD (AX)(R8*1), Z1
	VMOVUPD (AX)(R8*2), Z2
	VMOVUPD (AX)(BX*1), Z3
	LEAQ (AX)(R8*4), AX
	VMOVUPD (AX), Z4
	VMOVUPD (AX)(R8*1), Z5
	VMOVUPD (AX)(R8*2), Z6
	VMOVUPD (AX)(BX*1), Z7
	TRANSPOSE8
	MOVQ R12, DX
	IMULQ R8, DX
	ADDQ SI, DX
	LEAQ (DX)(R11*8), DX
	VMOVUPD Z0, (DX)
	VMOVUPD Z1, (DX)(R8*1)
	VMOVUPD Z2, (DX)(R8*2)
	VMOVUPD Z3, (DX)(BX*1)
	LEAQ (DX)(R8*4), DX
	VMOVUPD Z4, (DX)
	VMOVUPD Z5, (DX)(R8*1)
	VMOVUPD Z6, (DX)(R8*2)
	VMOVUPD Z7, (DX)(BX*1)
	ADDQ $8, R12
	JMP  mcol

mnext:
	ADDQ $8, R11
	JMP  mrow

mdone:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// Aligned AVX-512 Cholesky kernels. Row operations start at the row's
// column rounded down to a multiple of 8 (the columns below the diagonal
// are scratch once cholMirror has run), so that every vector sits at the
// same 8-aligned columns in every row: loads then meet the stores of
// earlier steps exactly (store-to-load forwarding works) and only a last
// vector at column k rounded down to 8, if k is not a multiple of 8, needs
// a mask (K3).

// func cholTrailAVX512(a *float64, k, j0, j1 int)
// a[i][c] -= Σ_{j0 ≤ r < j1} a[r][i]·a[r][c] for j1 ≤ i < k, i&^7 ≤ c < k,
// in strips of 4 rows (then single rows) and tiles of 16 columns.
//
// Registers: R8 ld bytes, R9 rows left, R10 &a[j0][i], R11 (j1−j0)·ld,
// R13 &a[i][i&^7], DI (i&^7 − i)·8, CX whole vectors left in the strip,
// DX tile offset in bytes, BX DI+DX, SI &a[r][i], R12 &a[j1][i], AX tile
// pointer. Locals: i, a.
TEXT ·cholTrailAVX512(SB), NOSPLIT, $16-32
	MOVQ a+0(FP), SI
	MOVQ SI, base-16(SP)
	MOVQ k+8(FP), R9
	MOVQ R9, R8
	SHLQ $3, R8
	MOVQ R9, CX
	ANDQ $7, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K3
	MOVQ j0+16(FP), DX
	MOVQ j1+24(FP), AX
	MOVQ AX, i-8(SP)
	SUBQ AX, R9
	MOVQ AX, R11
	SUBQ DX, R11
	IMULQ R8, R11
	MOVQ DX, R10
	IMULQ R8, R10
	ADDQ SI, R10
	LEAQ (R10)(AX*8), R10

t5strip:
	TESTQ R9, R9
	JLE  t5done
	MOVQ i-8(SP), AX
	MOVQ AX, DX
	ANDQ $-8, DX
	MOVQ DX, DI
	SUBQ AX, DI
	SHLQ $3, DI
	IMULQ R8, AX
	ADDQ base-16(SP), AX
	LEAQ (AX)(DX*8), R13
	MOVQ k+8(FP), CX
	SHRQ $3, CX
	SHRQ $3, DX
	SUBQ DX, CX
	XORQ DX, DX
	LEAQ (R10)(R11*1), R12
	CMPQ R9, $4
	JLT  t5one

t5tile4:
	CMPQ CX, $2
	JLT  t5rest4
	LEAQ (R13)(DX*1), AX
	VMOVUPD (AX), Z0
	VMOVUPD 64(AX), Z1
	VMOVUPD (AX)(R8*1), Z2
	VMOVUPD 64(AX)(R8*1), Z3
	VMOVUPD (AX)(R8*2), Z4
	VMOVUPD 64(AX)(R8*2), Z5
	LEAQ (AX)(R8*2), AX
	VMOVUPD (AX)(R8*1), Z6
	VMOVUPD 64(AX)(R8*1), Z7
	LEAQ (DI)(DX*1), BX
	MOVQ R10, SI

t5r4:
	VMOVUPD (SI)(BX*1), Z16
	VMOVUPD 64(SI)(BX*1), Z17
	VBROADCASTSD (SI), Z18
	VFNMADD231PD Z16, Z18, Z0
	VFNMADD231PD Z17, Z18, Z1
	VBROADCASTSD 8(SI), Z19
	VFNMADD231PD Z16, Z19, Z2
	VFNMADD231PD Z17, Z19, Z3
	VBROADCASTSD 16(SI), Z20
	VFNMADD231PD Z16, Z20, Z4
	VFNMADD231PD Z17, Z20, Z5
	VBROADCASTSD 24(SI), Z21
	VFNMADD231PD Z16, Z21, Z6
	VFNMADD231PD Z17, Z21, Z7
	ADDQ R8, SI
	CMPQ SI, R12
	JNE  t5r4

	LEAQ (R13)(DX*1), AX
	VMOVUPD Z0, (AX)
	VMOVUPD Z1, 64(AX)
	VMOVUPD Z2, (AX)(R8*1)
	VMOVUPD Z3, 64(AX)(R8*1)
	VMOVUPD Z4, (AX)(R8*2)
	VMOVUPD Z5, 64(AX)(R8*2)
	LEAQ (AX)(R8*2), AX
	VMOVUPD Z6, (AX)(R8*1)
	VMOVUPD Z7, 64(AX)(R8*1)
	ADDQ $128, DX
	SUBQ $2, CX
	JMP  t5tile4

t5rest4:
	// One whole vector and/or the masked tail: K1, K2 for the last tile.
	KMOVW K3, K1
	KXORW K2, K2, K2
	TESTQ CX, CX
	JZ   t5m4
	KXNORW K1, K1, K1
	KMOVW K3, K2

t5m4:
	KORTESTW K1, K1
	JZ   t5next4
	LEAQ (R13)(DX*1), AX
	VMOVUPD.Z (AX), K1, Z0
	VMOVUPD.Z 64(AX), K2, Z1
	VMOVUPD.Z (AX)(R8*1), K1, Z2
	VMOVUPD.Z 64(AX)(R8*1), K2, Z3
	VMOVUPD.Z (AX)(R8*2), K1, Z4
	VMOVUPD.Z 64(AX)(R8*2), K2, Z5
	LEAQ (AX)(R8*2), AX
	VMOVUPD.Z (AX)(R8*1), K1, Z6
	VMOVUPD.Z 64(AX)(R8*1), K2, Z7
	LEAQ (DI)(DX*1), BX
	MOVQ R10, SI

t5mr4:
	VMOVUPD.Z (SI)(BX*1), K1, Z16
	VMOVUPD.Z 64(SI)(BX*1), K2, Z17
	VBROADCASTSD (SI), Z18
	VFNMADD231PD Z16, Z18, Z0
	VFNMADD231PD Z17, Z18, Z1
	VBROADCASTSD 8(SI), Z19
	VFNMADD231PD Z16, Z19, Z2
	VFNMADD231PD Z17, Z19, Z3
	VBROADCASTSD 16(SI), Z20
	VFNMADD231PD Z16, Z20, Z4
	VFNMADD231PD Z17, Z20, Z5
	VBROADCASTSD 24(SI), Z21
	VFNMADD231PD Z16, Z21, Z6
	VFNMADD231PD Z17, Z21, Z7
	ADDQ R8, SI
	CMPQ SI, R12
	JNE  t5mr4

	LEAQ (R13)(DX*1), AX
	VMOVUPD Z0, K1, (AX)
	VMOVUPD Z1, K2, 64(AX)
	VMOVUPD Z2, K1, (AX)(R8*1)
	VMOVUPD Z3, K2, 64(AX)(R8*1)
	VMOVUPD Z4, K1, (AX)(R8*2)
	VMOVUPD Z5, K2, 64(AX)(R8*2)
	LEAQ (AX)(R8*2), AX
	VMOVUPD Z6, K1, (AX)(R8*1)
	VMOVUPD Z7, K2, 64(AX)(R8*1)

t5next4:
	ADDQ $4, i-8(SP)
	ADDQ $32, R10
	SUBQ $4, R9
	JMP  t5strip

t5one:
	CMPQ CX, $2
	JLT  t5rest1
	LEAQ (R13)(DX*1), AX
	VMOVUPD (AX), Z0
	VMOVUPD 64(AX), Z1
	LEAQ (DI)(DX*1), BX
	MOVQ R10, SI

t5r1:
	VMOVUPD (SI)(BX*1), Z16
	VMOVUPD 64(SI)(BX*1), Z17
	VBROADCASTSD (SI), Z18
	VFNMADD231PD Z16, Z18, Z0
	VFNMADD231PD Z17, Z18, Z1
	ADDQ R8, SI
	CMPQ SI, R12
	JNE  t5r1

	LEAQ (R13)(DX*1), AX
	VMOVUPD Z0, (AX)
	VMOVUPD Z1, 64(AX)
	ADDQ $128, DX
	SUBQ $2, CX
	JMP  t5one

t5rest1:
	KMOVW K3, K1
	KXORW K2, K2, K2
	TESTQ CX, CX
	JZ   t5m1
	KXNORW K1, K1, K1
	KMOVW K3, K2

t5m1:
	KORTESTW K1, K1
	JZ   t5next1
	LEAQ (R13)(DX*1), AX
	VMOVUPD.Z (AX), K1, Z0
	VMOVUPD.Z 64(AX), K2, Z1
	LEAQ (DI)(DX*1), BX
	MOVQ R10, SI

t5mr1:
	VMOVUPD.Z (SI)(BX*1), K1, Z16
	VMOVUPD.Z 64(SI)(BX*1), K2, Z17
	VBROADCASTSD (SI), Z18
	VFNMADD231PD Z16, Z18, Z0
	VFNMADD231PD Z17, Z18, Z1
	ADDQ R8, SI
	CMPQ SI, R12
	JNE  t5mr1

	LEAQ (R13)(DX*1), AX
	VMOVUPD Z0, K1, (AX)
	VMOVUPD Z1, K2, 64(AX)

t5next1:
	INCQ i-8(SP)
	ADDQ $8, R10
	DECQ R9
	JMP  t5strip

t5done:
	VZEROUPPER
	RET

// TILEMASKS sets K1, K2 for a 16-column tile with CX whole vectors left:
// both full, or full and the tail K3, or the tail K3 alone.
#define TILEMASKS(done) \
	KXNORW K1, K1, K1; \
	KXNORW K2, K2, K2; \
	CMPQ CX, $2; \
	JGE  done; \
	KMOVW K3, K2; \
	CMPQ CX, $1; \
	JEQ  done; \
	KMOVW K3, K1; \
	KXORW K2, K2, K2

// func cholPanelAlAVX512(a *float64, k, j0, j1 int) (fail int)
// Factors rows j0 ≤ j < j1 of U (see cholPanelGo): row j is updated from
// column j&^7 with the panel's earlier rows (four chains of multiply-adds:
// the panel is latency-bound, each row waiting for the previous one), its
// pivot checked, and the row from column j&^7 scaled by 1/√d, with √d
// merged into the diagonal lane before the store. The square root and the
// reciprocal are computed in parallel: 1/√d = √d · (1/d).
//
// Registers: R8 ld bytes, R9 rows left, R10 &a[j0][j], R11 (j−j0)·ld,
// R12 &a[j][j] in the update's end test (R10+R11), R13 &a[j][j&^7],
// DI (j&^7 − j)·8, CX whole vectors left, DX vector offset, BX DI+DX,
// SI &a[r][j], AX scratch. Locals: j, a, j−j0.
TEXT ·cholPanelAlAVX512(SB), NOSPLIT, $24-40
	MOVQ a+0(FP), SI
	MOVQ SI, base-16(SP)
	MOVQ k+8(FP), R8
	MOVQ R8, CX
	ANDQ $7, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K3
	SHLQ $3, R8
	MOVQ j0+16(FP), DX
	MOVQ DX, j-8(SP)
	MOVQ j1+24(FP), R9
	SUBQ DX, R9
	MOVQ DX, R10
	IMULQ R8, R10
	ADDQ SI, R10
	LEAQ (R10)(DX*8), R10
	XORQ R11, R11
	MOVQ $0, dep-24(SP)

q5row:
	TESTQ R9, R9
	JLE  q5ok
	MOVQ j-8(SP), AX
	MOVQ AX, DX
	ANDQ $-8, DX
	MOVQ DX, DI
	SUBQ AX, DI
	SHLQ $3, DI
	IMULQ R8, AX
	ADDQ base-16(SP), AX
	LEAQ (AX)(DX*8), R13
	MOVQ k+8(FP), CX
	SHRQ $3, CX
	SHRQ $3, DX
	SUBQ DX, CX
	XORQ DX, DX
	LEAQ (R10)(R11*1), R12
	TESTQ R11, R11
	JZ   q5pivot

q5tile:
	CMPQ CX, $0
	JLE  q5tailchk
	JMP  q5masks

q5tailchk:
	KORTESTW K3, K3
	JZ   q5pivot

q5masks:
	TILEMASKS(q5mdone)

q5mdone:
	LEAQ (R13)(DX*1), AX
	VMOVUPD.Z (AX), K1, Z0
	VMOVUPD.Z 64(AX), K2, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	VPXORQ Z4, Z4, Z4
	VPXORQ Z5, Z5, Z5
	VPXORQ Z6, Z6, Z6
	VPXORQ Z7, Z7, Z7
	LEAQ (DI)(DX*1), BX
	MOVQ R10, SI
	MOVQ dep-24(SP), AX
	ANDQ $3, AX
	JZ   q5r4

q5r1:
	VMOVUPD.Z (SI)(BX*1), K1, Z16
	VMOVUPD.Z 64(SI)(BX*1), K2, Z17
	VBROADCASTSD (SI), Z18
	VFNMADD231PD Z16, Z18, Z0
	VFNMADD231PD Z17, Z18, Z1
	ADDQ R8, SI
	DECQ AX
	JNZ  q5r1

q5r4:
	CMPQ SI, R12
	JEQ  q5sum
	VMOVUPD.Z (SI)(BX*1), K1, Z16
	VMOVUPD.Z 64(SI)(BX*1), K2, Z17
	VBROADCASTSD (SI), Z18
	VFNMADD231PD Z16, Z18, Z0
	VFNMADD231PD Z17, Z18, Z1
	ADDQ R8, SI
	VMOVUPD.Z (SI)(BX*1), K1, Z19
	VMOVUPD.Z 64(SI)(BX*1), K2, Z20
	VBROADCASTSD (SI), Z21
	VFNMADD231PD Z19, Z21, Z2
	VFNMADD231PD Z20, Z21, Z3
	ADDQ R8, SI
	VMOVUPD.Z (SI)(BX*1), K1, Z22
	VMOVUPD.Z 64(SI)(BX*1), K2, Z23
	VBROADCASTSD (SI), Z24
	VFNMADD231PD Z22, Z24, Z4
	VFNMADD231PD Z23, Z24, Z5
	ADDQ R8, SI
	VMOVUPD.Z (SI)(BX*1), K1, Z25
	VMOVUPD.Z 64(SI)(BX*1), K2, Z26
	VBROADCASTSD (SI), Z27
	VFNMADD231PD Z25, Z27, Z6
	VFNMADD231PD Z26, Z27, Z7
	ADDQ R8, SI
	JMP  q5r4

q5sum:
	VADDPD Z2, Z0, Z0
	VADDPD Z3, Z1, Z1
	VADDPD Z6, Z4, Z4
	VADDPD Z7, Z5, Z5
	VADDPD Z4, Z0, Z0
	VADDPD Z5, Z1, Z1
	LEAQ (R13)(DX*1), AX
	VMOVUPD Z0, K1, (AX)
	VMOVUPD Z1, K2, 64(AX)
	ADDQ $128, DX
	SUBQ $2, CX
	CMPQ CX, $0
	JGE  q5tile

q5pivot:
	MOVQ R13, AX
	SUBQ DI, AX
	VMOVSD (AX), X0
	VXORPD X2, X2, X2
	VUCOMISD X2, X0
	JLS  q5fail
	VUCOMISD inf64<>(SB), X0
	JCC  q5fail
	VSQRTSD X0, X0, X3
	VMOVSD one64<>(SB), X1
	VDIVSD X0, X1, X1
	VMULSD X3, X1, X1
	VBROADCASTSD X1, Z1
	// K4 = the diagonal's lane, j mod 8 = −DI/8.
	MOVQ DI, CX
	NEGQ CX
	SHRQ $3, CX
	MOVL $1, AX
	SHLL CX, AX
	KMOVW AX, K4
	MOVQ k+8(FP), CX
	SHRQ $3, CX
	MOVQ j-8(SP), AX
	SHRQ $3, AX
	SUBQ AX, CX
	MOVQ R13, AX
	// The first vector (the tail if it is the only one).
	KXNORW K1, K1, K1
	TESTQ CX, CX
	JNZ  q5s0
	KMOVW K3, K1

q5s0:
	VMOVUPD.Z (AX), K1, Z0
	VMULPD Z1, Z0, Z0
	VBROADCASTSD X3, K4, Z0
	VMOVUPD Z0, K1, (AX)
	ADDQ $64, AX
	DECQ CX

q5scale:
	CMPQ CX, $0
	JLE  q5stail
	VMULPD (AX), Z1, Z0
	VMOVUPD Z0, (AX)
	ADDQ $64, AX
	DECQ CX
	JMP  q5scale

q5stail:
	JL   q5next
	KORTESTW K3, K3
	JZ   q5next
	VMOVUPD.Z (AX), K3, Z0
	VMULPD Z1, Z0, Z0
	VMOVUPD Z0, K3, (AX)

q5next:
	INCQ j-8(SP)
	INCQ dep-24(SP)
	ADDQ $8, R10
	ADDQ R8, R11
	DECQ R9
	JMP  q5row

q5ok:
	MOVQ $-1, fail+32(FP)
	VZEROUPPER
	RET

q5fail:
	MOVQ j-8(SP), AX
	MOVQ AX, fail+32(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// func symFillAVX512(dst, a, base *float64, k, kp, kb int, diag float64)
// The 8×8 blocks of normalEq.matrix with both indices below kb (k rounded
// down to 8): dst[i][j] = dst[j][i] = a[i][j] + base[i][j] (+ diag if
// i = j) for i ≤ j, where a has row stride kp and base (nil: none) and dst
// row stride k. A block above the diagonal is stored as it is and
// transposed; a diagonal block takes its lanes below the diagonal from its
// transpose.
//
// Registers: DI dst, SI a, DX base, R8 k·8, R9 kp·8, R10 kb, R11 i0,
// R12 j0, R13/AX/BX/CX row pointers. Z0-Z7 the block, Z8-Z15 its copy,
// Z28 diag.
TEXT ·symFillAVX512(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ base+16(FP), DX
	MOVQ k+24(FP), R8
	SHLQ $3, R8
	MOVQ kp+32(FP), R9
	SHLQ $3, R9
	MOVQ kb+40(FP), R10
	VBROADCASTSD diag+48(FP), Z28
	XORQ R11, R11

sfrow:
	CMPQ R11, R10
	JGE  sfdone
	MOVQ R11, R12

sfcol:
	CMPQ R12, R10
	JGE  sfnext
	// Load a[i0+q][j0:j0+8] into Zq.
	MOVQ R11, AX
	IMULQ R9, AX
	ADDQ SI, AX
	LEAQ (AX)(R12*8), AX
	VMOVUPD (AX), Z0
	ADDQ R9, AX
	VMOVUPD (AX), Z1
	ADDQ R9, AX
	VMOVUPD (AX), Z2
	ADDQ R9, AX
	VMOVUPD (AX), Z3
	ADDQ R9, AX
	VMOVUPD (AX), Z4
	ADDQ R9, AX
	VMOVUPD (AX), Z5
	ADDQ R9, AX
	VMOVUPD (AX), Z6
	ADDQ R9, AX
	VMOVUPD (AX), Z7
	TESTQ DX, DX
	JZ   sfnobase
	MOVQ R11, AX
	IMULQ R8, AX
	ADDQ DX, AX
	LEAQ (AX)(R12*8), AX
	VADDPD (AX), Z0, Z0
	ADDQ R8, AX
	VADDPD (AX), Z1, Z1
	ADDQ R8, AX
	VADDPD (AX), Z2, Z2
	ADDQ R8, AX
	VADDPD (AX), Z3, Z3
	ADDQ R8, AX
	VADDPD (AX), Z4, Z4
	ADDQ R8, AX
	VADDPD (AX), Z5, Z5
	ADDQ R8, AX
	VADDPD (AX), Z6, Z6
	ADDQ R8, AX
	VADDPD (AX), Z7, Z7

sfnobase:
	// R13 = &dst[i0][j0], BX = &dst[j0][i0]
	MOVQ R11, R13
	IMULQ R8, R13
	ADDQ DI, R13
	LEAQ (R13)(R12*8), R13
	MOVQ R12, BX
	IMULQ R8, BX
	ADDQ DI, BX
	LEAQ (BX)(R11*8), BX
	CMPQ R11, R12
	JEQ  sfdiag
	MOVQ R13, AX
	VMOVUPD Z0, (AX)
	ADDQ R8, AX
	VMOVUPD Z1, (AX)
	ADDQ R8, AX
	VMOVUPD Z2, (AX)
	ADDQ R8, AX
	VMOVUPD Z3, (AX)
	ADDQ R8, AX
	VMOVUPD Z4, (AX)
	ADDQ R8, AX
	VMOVUPD Z5, (AX)
	ADDQ R8, AX
	VMOVUPD Z6, (AX)
	ADDQ R8, AX
	VMOVUPD Z7, (AX)
	TRANSPOSE8
	MOVQ BX, AX
	VMOVUPD Z0, (AX)
	ADDQ R8, AX
	VMOVUPD Z1, (AX)
	ADDQ R8, AX
	VMOVUPD Z2, (AX)
	ADDQ R8, AX
	VMOVUPD Z3, (AX)
	ADDQ R8, AX
	VMOVUPD Z4, (AX)
	ADDQ R8, AX
	VMOVUPD Z5, (AX)
	ADDQ R8, AX
	VMOVUPD Z6, (AX)
	ADDQ R8, AX
	VMOVUPD Z7, (AX)
	ADDQ $8, R12
	JMP  sfcol

sfdiag:
	VMOVAPD Z0, Z8
	VMOVAPD Z1, Z9
	VMOVAPD Z2, Z10
	VMOVAPD Z3, Z11
	VMOVAPD Z4, Z12
	VMOVAPD Z5, Z13
	VMOVAPD Z6, Z14
	VMOVAPD Z7, Z15
	TRANSPOSE8
	// Row q: lanes ≥ q from the block, lane q plus diag.
	MOVL $0xff, AX
	KMOVW AX, K1
	VMOVAPD Z8, K1, Z0
	MOVL $0x01, AX
	KMOVW AX, K2
	VADDPD Z28, Z0, K2, Z0
	MOVL $0xfe, AX
	KMOVW AX, K1
	VMOVAPD Z9, K1, Z1
	MOVL $0x02, AX
	KMOVW AX, K2
	VADDPD Z28, Z1, K2, Z1
	MOVL $0xfc, AX
	KMOVW AX, K1
	VMOVAPD Z10, K1, Z2
	MOVL $0x04, AX
	KMOVW AX, K2
	VADDPD Z28, Z2, K2, Z2
	MOVL $0xf8, AX
	KMOVW AX, K1
	VMOVAPD Z11, K1, Z3
	MOVL $0x08, AX
	KMOVW AX, K2
	VADDPD Z28, Z3, K2, Z3
	MOVL $0xf0, AX
	KMOVW AX, K1
	VMOVAPD Z12, K1, Z4
	MOVL $0x10, AX
	KMOVW AX, K2
	VADDPD Z28, Z4, K2, Z4
	MOVL $0xe0, AX
	KMOVW AX, K1
	VMOVAPD Z13, K1, Z5
	MOVL $0x20, AX
	KMOVW AX, K2
	VADDPD Z28, Z5, K2, Z5
	MOVL $0xc0, AX
	KMOVW AX, K1
	VMOVAPD Z14, K1, Z6
	MOVL $0x40, AX
	KMOVW AX, K2
	VADDPD Z28, Z6, K2, Z6
	MOVL $0x80, AX
	KMOVW AX, K1
	VMOVAPD Z15, K1, Z7
	KMOVW AX, K2
	VADDPD Z28, Z7, K2, Z7
	MOVQ R13, AX
	VMOVUPD Z0, (AX)
	ADDQ R8, AX
	VMOVUPD Z1, (AX)
	ADDQ R8, AX
	VMOVUPD Z2, (AX)
	ADDQ R8, AX
	VMOVUPD Z3, (AX)
	ADDQ R8, AX
	VMOVUPD Z4, (AX)
	ADDQ R8, AX
	VMOVUPD Z5, (AX)
	ADDQ R8, AX
	VMOVUPD Z6, (AX)
	ADDQ R8, AX
	VMOVUPD Z7, (AX)
	ADDQ $8, R12
	JMP  sfcol

sfnext:
	ADDQ $8, R11
	JMP  sfrow

sfdone:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// AVX2 versions of cholSolveU, cholMirror and symFill: the AVX-512 ones
// above with 4×4 blocks of doubles in ymm registers.

// Transpose the 4×4 block of doubles in A, B, C, D (rows → columns) with
// the scratch registers T0-T3.
#define TRANSPOSE4(A, B, C, D, T0, T1, T2, T3) \
	VUNPCKLPD B, A, T0; \
	VUNPCKHPD B, A, T1; \
	VUNPCKLPD D, C, T2; \
	VUNPCKHPD D, C, T3; \
	VPERM2F128 $0x20, T2, T0, A; \
	VPERM2F128 $0x20, T3, T1, B; \
	VPERM2F128 $0x31, T2, T0, C; \
	VPERM2F128 $0x31, T3, T1, D

// Load rows q < CX of the block (R11, stride R8, BX = 3 strides) into
// Y0-Y3, lanes below CX (mask Y14), zeros elsewhere. A whole block (CX = 4)
// takes plain loads.
#define LOADBLOCK4(part, done) \
	CMPQ CX, $4; \
	JLT  part; \
	VMOVUPD (R11), Y0; \
	VMOVUPD (R11)(R8*1), Y1; \
	VMOVUPD (R11)(R8*2), Y2; \
	VMOVUPD (R11)(BX*1), Y3; \
	JMP  done; \
part: \
	VXORPD Y1, Y1, Y1; \
	VXORPD Y2, Y2, Y2; \
	VXORPD Y3, Y3, Y3; \
	VMASKMOVPD (R11), Y14, Y0; \
	CMPQ CX, $1; \
	JLE  done; \
	VMASKMOVPD (R11)(R8*1), Y14, Y1; \
	CMPQ CX, $2; \
	JLE  done; \
	VMASKMOVPD (R11)(R8*2), Y14, Y2

// Y10 = 1 / (lane q of Yq for q = 0..3): the block's diagonal (lanes past
// a partial block divide by zero and are never used).
#define INVDIAG4 \
	VBLENDPD $0x02, Y1, Y0, Y11; \
	VBLENDPD $0x04, Y2, Y11, Y11; \
	VBLENDPD $0x08, Y3, Y11, Y11; \
	VBROADCASTSD ones64<>(SB), Y10; \
	VDIVPD Y11, Y10, Y10

// One step of a block solve: s = t_q · (1/U_qq) broadcast into YS (PERM
// selects lane q in every lane), lane q of the result Y12 set to it, and
// t -= s·VQ. Only lanes of t still to be solved matter afterwards, so the
// others (where VQ may hold the other triangle's entries) are not masked.
#define SOLVESTEP4(PERM, QBIT, VQ, YS) \
	VPERMPD $PERM, Y8, YS; \
	VPERMPD $PERM, Y10, Y11; \
	VMULPD Y11, YS, YS; \
	VBLENDPD $QBIT, YS, Y12, Y12; \
	VFNMADD231PD VQ, YS, Y8

// Y14 = mask64 lanes below CX (CX ≤ 4); clobbers AX, DX.
#define LANEMASK4 \
	MOVQ $8, AX; \
	SUBQ CX, AX; \
	LEAQ mask64<>(SB), DX; \
	VMOVDQU (DX)(AX*8), Y14

// func cholSolveUAVX2(a *float64, k int, b *float64)
// Forward: block p0 (rows in Y0-Y3, t in Y8) is solved step by step, z_q
// kept broadcast in Y4-Y7 for the rank-4 update of b[p0+4:]. Backward:
// t = z_block − U[block][p0+4:]·x[p0+4:] with eight accumulators (Y0-Y7,
// two vectors per step), reduced by horizontal adds; then the block's
// columns (the transposed rows) solve its triangle bottom-up.
//
// Registers: SI a, R8 ld bytes, BX 3·ld, DI b, R9 k, R10 block start,
// CX rows in the block, R11 &a[p0][p0], R13 row pointer, AX/DX/R12
// scratch. Y8 t, Y10 1/diagonal, Y12 result, Y14 block lanes, Y15 tail
// mask.
TEXT ·cholSolveUAVX2(SB), NOSPLIT, $0-24
	MOVQ a+0(FP), SI
	MOVQ k+8(FP), R9
	MOVQ b+16(FP), DI
	MOVQ R9, R8
	SHLQ $3, R8
	LEAQ (R8)(R8*2), BX
	XORQ R10, R10

f2block:
	CMPQ R10, R9
	JGE  f2done
	MOVQ R9, CX
	SUBQ R10, CX
	CMPQ CX, $4
	JLE  f2nb
	MOVQ $4, CX

f2nb:
	LANEMASK4
	MOVQ R10, AX
	IMULQ R8, AX
	ADDQ SI, AX
	LEAQ (AX)(R10*8), R11
	// A whole block takes a plain load, which the last update's store
	// can forward to.
	CMPQ CX, $4
	JLT  f2tmask
	VMOVUPD (DI)(R10*8), Y8
	JMP  f2t

f2tmask:
	VMASKMOVPD (DI)(R10*8), Y14, Y8

f2t:
	VXORPD Y12, Y12, Y12
	LOADBLOCK4(f2part, f2loaded)

f2loaded:
	INVDIAG4
	SOLVESTEP4(0x00, 0x01, Y0, Y4)
	CMPQ CX, $1
	JLE  f2store
	SOLVESTEP4(0x55, 0x02, Y1, Y5)
	CMPQ CX, $2
	JLE  f2store
	SOLVESTEP4(0xAA, 0x04, Y2, Y6)
	CMPQ CX, $3
	JLE  f2store
	SOLVESTEP4(0xFF, 0x08, Y3, Y7)

f2store:
	VMASKMOVPD Y12, Y14, (DI)(R10*8)
	// Rank-4 update of b[p0+4:] (only after a whole block).
	MOVQ R9, CX
	SUBQ R10, CX
	SUBQ $4, CX
	JLE  f2next
	LEAQ 32(R11), R13
	LEAQ 32(DI)(R10*8), DX

f2upd:
	CMPQ CX, $4
	JLT  f2updtail
	VMOVUPD (DX), Y13
	VFNMADD231PD (R13), Y4, Y13
	VFNMADD231PD (R13)(R8*1), Y5, Y13
	VFNMADD231PD (R13)(R8*2), Y6, Y13
	VFNMADD231PD (R13)(BX*1), Y7, Y13
	VMOVUPD Y13, (DX)
	ADDQ $32, DX
	ADDQ $32, R13
	SUBQ $4, CX
	JMP  f2upd

f2updtail:
	TESTQ CX, CX
	JLE  f2next
	MOVQ $8, AX
	SUBQ CX, AX
	LEAQ mask64<>(SB), R12
	VMOVDQU (R12)(AX*8), Y15
	VMASKMOVPD (DX), Y15, Y13
	VMASKMOVPD (R13), Y15, Y11
	VFNMADD231PD Y11, Y4, Y13
	VMASKMOVPD (R13)(R8*1), Y15, Y11
	VFNMADD231PD Y11, Y5, Y13
	VMASKMOVPD (R13)(R8*2), Y15, Y11
	VFNMADD231PD Y11, Y6, Y13
	VMASKMOVPD (R13)(BX*1), Y15, Y11
	VFNMADD231PD Y11, Y7, Y13
	VMASKMOVPD Y13, Y15, (DX)

f2next:
	ADDQ $4, R10
	JMP  f2block

f2done:
	// Backward, from the last block (the only one that may be partial).
	MOVQ R9, R10
	DECQ R10
	ANDQ $-4, R10

b2block:
	CMPQ R10, $0
	JLT  b2done
	MOVQ R9, CX
	SUBQ R10, CX
	CMPQ CX, $4
	JLE  b2nb
	MOVQ $4, CX

b2nb:
	LANEMASK4
	MOVQ R10, AX
	IMULQ R8, AX
	ADDQ SI, AX
	LEAQ (AX)(R10*8), R11
	VMASKMOVPD (DI)(R10*8), Y14, Y8
	VXORPD Y12, Y12, Y12
	MOVQ R9, DX
	SUBQ R10, DX
	SUBQ $4, DX
	JLE  b2diag
	// t -= U[block][p0+4:] · x[p0+4:]
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	LEAQ 32(R11), R13
	LEAQ 32(DI)(R10*8), AX

b2dot8:
	CMPQ DX, $8
	JLT  b2dot4
	VMOVUPD (AX), Y9
	VMOVUPD 32(AX), Y13
	VFMADD231PD (R13), Y9, Y0
	VFMADD231PD (R13)(R8*1), Y9, Y1
	VFMADD231PD (R13)(R8*2), Y9, Y2
	VFMADD231PD (R13)(BX*1), Y9, Y3
	VFMADD231PD 32(R13), Y13, Y4
	VFMADD231PD 32(R13)(R8*1), Y13, Y5
	VFMADD231PD 32(R13)(R8*2), Y13, Y6
	VFMADD231PD 32(R13)(BX*1), Y13, Y7
	ADDQ $64, AX
	ADDQ $64, R13
	SUBQ $8, DX
	JMP  b2dot8

b2dot4:
	CMPQ DX, $4
	JLT  b2dottail
	VMOVUPD (AX), Y9
	VFMADD231PD (R13), Y9, Y0
	VFMADD231PD (R13)(R8*1), Y9, Y1
	VFMADD231PD (R13)(R8*2), Y9, Y2
	VFMADD231PD (R13)(BX*1), Y9, Y3
	ADDQ $32, AX
	ADDQ $32, R13
	SUBQ $4, DX

b2dottail:
	TESTQ DX, DX
	JLE  b2reduce
	NEGQ DX
	ADDQ $8, DX
	LEAQ mask64<>(SB), R12
	VMOVDQU (R12)(DX*8), Y15
	VMASKMOVPD (AX), Y15, Y9
	VMASKMOVPD (R13), Y15, Y13
	VFMADD231PD Y13, Y9, Y4
	VMASKMOVPD (R13)(R8*1), Y15, Y13
	VFMADD231PD Y13, Y9, Y5
	VMASKMOVPD (R13)(R8*2), Y15, Y13
	VFMADD231PD Y13, Y9, Y6
	VMASKMOVPD (R13)(BX*1), Y15, Y13
	VFMADD231PD Y13, Y9, Y7

b2reduce:
	VADDPD Y4, Y0, Y0
	VADDPD Y5, Y1, Y1
	VADDPD Y6, Y2, Y2
	VADDPD Y7, Y3, Y3
	VHADDPD Y1, Y0, Y4
	VHADDPD Y3, Y2, Y5
	VPERM2F128 $0x21, Y5, Y4, Y6
	VBLENDPD $0x0C, Y5, Y4, Y7
	VADDPD Y6, Y7, Y7
	VSUBPD Y7, Y8, Y8

b2diag:
	LOADBLOCK4(b2part, b2loaded)

b2loaded:
	TRANSPOSE4(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7)
	INVDIAG4
	CMPQ CX, $4
	JEQ  b2s3
	CMPQ CX, $3
	JEQ  b2s2
	CMPQ CX, $2
	JEQ  b2s1
	JMP  b2s0

b2s3:
	SOLVESTEP4(0xFF, 0x08, Y3, Y13)

b2s2:
	SOLVESTEP4(0xAA, 0x04, Y2, Y13)

b2s1:
	SOLVESTEP4(0x55, 0x02, Y1, Y13)

b2s0:
	SOLVESTEP4(0x00, 0x01, Y0, Y13)
	VMASKMOVPD Y12, Y14, (DI)(R10*8)
	SUBQ $4, R10
	JMP  b2block

b2done:
	VZEROUPPER
	RET

// func cholMirrorAVX2(a *float64, k int)
// cholMirrorAVX512 with 4×4 blocks, for rows and columns below k rounded
// down to 4. Rows go by strips of 8 while they last, two blocks at a time
// one above the other, so that each transposed store fills 64 bytes of a
// destination row (a whole cache line at the usual alignment): with
// 32-byte stores at a power-of-two row stride, the line would be evicted
// before the next strip wrote its other half. A last strip of 4 rows goes
// block by block.
//
// Registers: SI a, R8 ld bytes, BX 3·ld, R10 k rounded down to 4, R11 i0,
// R12 j0, AX &a[i0][j0] (source), R13 &a[i0+4][j0] (source), DX
// &a[j0][i0] (destination).
TEXT ·cholMirrorAVX2(SB), NOSPLIT, $0-16
	MOVQ a+0(FP), SI
	MOVQ k+8(FP), R9
	MOVQ R9, R8
	SHLQ $3, R8
	LEAQ (R8)(R8*2), BX
	MOVQ R9, R10
	ANDQ $-4, R10
	XORQ R11, R11

m2strip:
	LEAQ 8(R11), AX
	CMPQ AX, R10
	JG   m2row
	XORQ R12, R12
	MOVQ R11, AX
	IMULQ R8, AX
	ADDQ SI, AX
	LEAQ (AX)(R8*4), R13
	LEAQ (SI)(R11*8), DX

m2pair:
	CMPQ R12, R11
	JG   m2pdiag
	VMOVUPD (AX), Y0
	VMOVUPD (AX)(R8*1), Y1
	VMOVUPD (AX)(R8*2), Y2
	VMOVUPD (AX)(BX*1), Y3
	VMOVUPD (R13), Y4
	VMOVUPD (R13)(R8*1), Y5
	VMOVUPD (R13)(R8*2), Y6
	VMOVUPD (R13)(BX*1), Y7
	TRANSPOSE4(Y0, Y1, Y2, Y3, Y8, Y9, Y10, Y11)
	TRANSPOSE4(Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11)
	VMOVUPD Y0, (DX)
	VMOVUPD Y4, 32(DX)
	VMOVUPD Y1, (DX)(R8*1)
	VMOVUPD Y5, 32(DX)(R8*1)
	VMOVUPD Y2, (DX)(R8*2)
	VMOVUPD Y6, 32(DX)(R8*2)
	VMOVUPD Y3, (DX)(BX*1)
	VMOVUPD Y7, 32(DX)(BX*1)
	ADDQ $32, AX
	ADDQ $32, R13
	LEAQ (DX)(R8*4), DX
	ADDQ $4, R12
	JMP  m2pair

m2pdiag:
	// The diagonal block of the strip's lower half: R13 = &a[i0+4][i0+4].
	VMOVUPD (R13), Y4
	VMOVUPD (R13)(R8*1), Y5
	VMOVUPD (R13)(R8*2), Y6
	VMOVUPD (R13)(BX*1), Y7
	TRANSPOSE4(Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11)
	VMOVUPD Y4, (R13)
	VMOVUPD Y5, (R13)(R8*1)
	VMOVUPD Y6, (R13)(R8*2)
	VMOVUPD Y7, (R13)(BX*1)
	ADDQ $8, R11
	JMP  m2strip

m2row:
	CMPQ R11, R10
	JGE  m2done
	XORQ R12, R12
	MOVQ R11, AX
	IMULQ R8, AX
	ADDQ SI, AX
	LEAQ (SI)(R11*8), DX

m2col:
	CMPQ R12, R11
	JG   m2next
	VMOVUPD (AX), Y0
	VMOVUPD (AX)(R8*1), Y1
	VMOVUPD (AX)(R8*2), Y2
	VMOVUPD (AX)(BX*1), Y3
	TRANSPOSE4(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7)
	VMOVUPD Y0, (DX)
	VMOVUPD Y1, (DX)(R8*1)
	VMOVUPD Y2, (DX)(R8*2)
	VMOVUPD Y3, (DX)(BX*1)
	ADDQ $32, AX
	LEAQ (DX)(R8*4), DX
	ADDQ $4, R12
	JMP  m2col

m2next:
	ADDQ $4, R11
	JMP  m2row

m2done:
	VZEROUPPER
	RET

// symFill helpers. Registers as in symFillAVX2; AX is clobbered.

// A..D = a[I+q][J:J+4] + base[I+q][J:J+4] (if base) for q = 0..3.
#define SFLOAD(I, J, A, B, C, D, nobase) \
	MOVQ I, AX; \
	IMULQ R9, AX; \
	ADDQ SI, AX; \
	LEAQ (AX)(J*8), AX; \
	VMOVUPD (AX), A; \
	VMOVUPD (AX)(R9*1), B; \
	VMOVUPD (AX)(R9*2), C; \
	ADDQ R9, AX; \
	VMOVUPD (AX)(R9*2), D; \
	TESTQ DX, DX; \
	JZ   nobase; \
	MOVQ I, AX; \
	IMULQ R8, AX; \
	ADDQ DX, AX; \
	LEAQ (AX)(J*8), AX; \
	VADDPD (AX), A, A; \
	VADDPD (AX)(R8*1), B, B; \
	VADDPD (AX)(R8*2), C, C; \
	ADDQ R8, AX; \
	VADDPD (AX)(R8*2), D, D; \
nobase:

// dst[I+q][J:J+4] = A..D for q = 0..3.
#define SFSTORE(I, J, A, B, C, D) \
	MOVQ I, AX; \
	IMULQ R8, AX; \
	ADDQ DI, AX; \
	LEAQ (AX)(J*8), AX; \
	VMOVUPD A, (AX); \
	VMOVUPD B, (AX)(R8*1); \
	VMOVUPD C, (AX)(R8*2); \
	ADDQ R8, AX; \
	VMOVUPD D, (AX)(R8*2)

// A diagonal block in Y0-Y3 made symmetric from its upper triangle, diag
// (Y15) added to its diagonal: row q takes lanes ≥ q from the block and
// lanes < q from its transpose. Clobbers Y4-Y12.
#define SFDIAG \
	VMOVAPD Y0, Y8; \
	VMOVAPD Y1, Y9; \
	VMOVAPD Y2, Y10; \
	VMOVAPD Y3, Y11; \
	TRANSPOSE4(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7); \
	VADDPD Y15, Y8, Y12; \
	VBLENDPD $0x01, Y12, Y8, Y0; \
	VBLENDPD $0x0e, Y9, Y1, Y1; \
	VADDPD Y15, Y1, Y12; \
	VBLENDPD $0x02, Y12, Y1, Y1; \
	VBLENDPD $0x0c, Y10, Y2, Y2; \
	VADDPD Y15, Y2, Y12; \
	VBLENDPD $0x04, Y12, Y2, Y2; \
	VBLENDPD $0x08, Y11, Y3, Y3; \
	VADDPD Y15, Y3, Y12; \
	VBLENDPD $0x08, Y12, Y3, Y3

// func symFillAVX2(dst, a, base *float64, k, kp, kb int, diag float64)
// symFillAVX512 with 4×4 blocks: kb is k rounded down to 4. As in
// cholMirrorAVX2, rows go by strips of 8 while they last, so that the
// transposed stores of two blocks fill 64 bytes of a destination row; a
// last strip of 4 rows goes block by block.
//
// Registers: DI dst, SI a, DX base, R8 k·8, R9 kp·8, R10 kb, R11 i0,
// CX i0+4, R12 j0, AX row pointer; Y15 diag.
TEXT ·symFillAVX2(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ base+16(FP), DX
	MOVQ k+24(FP), R8
	SHLQ $3, R8
	MOVQ kp+32(FP), R9
	SHLQ $3, R9
	MOVQ kb+40(FP), R10
	VBROADCASTSD diag+48(FP), Y15
	XORQ R11, R11

s2strip:
	LEAQ 8(R11), CX
	CMPQ CX, R10
	JG   s2row
	LEAQ 4(R11), CX
	// Blocks (i0, i0) and (i0+4, i0+4) on the diagonal, (i0, i0+4) above.
	SFLOAD(R11, R11, Y0, Y1, Y2, Y3, s2nb1)
	SFDIAG
	SFSTORE(R11, R11, Y0, Y1, Y2, Y3)
	SFLOAD(R11, CX, Y0, Y1, Y2, Y3, s2nb2)
	SFSTORE(R11, CX, Y0, Y1, Y2, Y3)
	TRANSPOSE4(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7)
	SFSTORE(CX, R11, Y0, Y1, Y2, Y3)
	SFLOAD(CX, CX, Y0, Y1, Y2, Y3, s2nb3)
	SFDIAG
	SFSTORE(CX, CX, Y0, Y1, Y2, Y3)
	LEAQ 8(R11), R12

s2pair:
	// Blocks (i0, j0) and (i0+4, j0), both above the diagonal.
	CMPQ R12, R10
	JGE  s2pnext
	SFLOAD(R11, R12, Y0, Y1, Y2, Y3, s2nb4)
	SFLOAD(CX, R12, Y4, Y5, Y6, Y7, s2nb5)
	SFSTORE(R11, R12, Y0, Y1, Y2, Y3)
	SFSTORE(CX, R12, Y4, Y5, Y6, Y7)
	TRANSPOSE4(Y0, Y1, Y2, Y3, Y8, Y9, Y10, Y11)
	TRANSPOSE4(Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11)
	MOVQ R12, AX
	IMULQ R8, AX
	ADDQ DI, AX
	LEAQ (AX)(R11*8), AX
	VMOVUPD Y0, (AX)
	VMOVUPD Y4, 32(AX)
	VMOVUPD Y1, (AX)(R8*1)
	VMOVUPD Y5, 32(AX)(R8*1)
	VMOVUPD Y2, (AX)(R8*2)
	VMOVUPD Y6, 32(AX)(R8*2)
	ADDQ R8, AX
	VMOVUPD Y3, (AX)(R8*2)
	VMOVUPD Y7, 32(AX)(R8*2)
	ADDQ $4, R12
	JMP  s2pair

s2pnext:
	ADDQ $8, R11
	JMP  s2strip

s2row:
	CMPQ R11, R10
	JGE  s2done
	MOVQ R11, R12
	SFLOAD(R11, R11, Y0, Y1, Y2, Y3, s2nb6)
	SFDIAG
	SFSTORE(R11, R11, Y0, Y1, Y2, Y3)
	ADDQ $4, R12

s2col:
	CMPQ R12, R10
	JGE  s2next
	SFLOAD(R11, R12, Y0, Y1, Y2, Y3, s2nb7)
	SFSTORE(R11, R12, Y0, Y1, Y2, Y3)
	TRANSPOSE4(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7)
	SFSTORE(R12, R11, Y0, Y1, Y2, Y3)
	ADDQ $4, R12
	JMP  s2col

s2next:
	ADDQ $4, R11
	JMP  s2row

s2done:
	VZEROUPPER
	RET
