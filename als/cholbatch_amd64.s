//go:build amd64

#include "textflag.h"

// The AVX-512 version of cholBatchGo (cholbatch.go): eight systems, one
// in each float64 lane, entry (i, c) of all eight one 64-byte vector.
// Rows of U are factored eight at a time: each row of a block receives
// the block's earlier rows' updates in one pass (left-looking, the code
// written out for each of the eight rows so that their coefficients stay
// in registers), its pivot's square root and reciprocal, and is scaled; then the rows below
// the block, two at a time, receive the block's eight updates in one
// pass. Every entry gets its fused multiply-adds one after the other in
// increasing source row — the order cholBatchGo applies them in, so the
// results are the same to the last bit.
// Register use avoids BP (frame pointer), R14 (g) and R15 (GOT base).

DATA bones<>+0(SB)/8, $1.0
GLOBL bones<>(SB), RODATA|NOPTR, $8

DATA bmaxf<>+0(SB)/8, $0x7fefffffffffffff
GLOBL bmaxf<>(SB), RODATA|NOPTR, $8

// func cholBatchAVX512(a *float64, n int, b, w *float64) (fail int)
// n is a positive multiple of 8.
//
// Registers: DI a, R8 n, R9 row stride (n·64 bytes), R12 3·stride, BX
// the failed lanes, R10 first row of the block (jb), R11 row j, DX row i,
// AX/SI/R13 row pointers, CX counts; Z29 zero, Z30 the largest float64,
// Z31 ones.
TEXT ·cholBatchAVX512(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), DI
	MOVQ n+8(FP), R8
	MOVQ R8, R9
	SHLQ $6, R9
	XORQ BX, BX
	VBROADCASTSD bones<>(SB), Z31
	VBROADCASTSD bmaxf<>(SB), Z30
	VPXORQ Z29, Z29, Z29
	XORQ R10, R10

cbblock:
	CMPQ R10, R8
	JGE  cbsolve
	LEAQ (R9)(R9*2), R13
	// The block's rows j = jb+t, t = 0…7, left-looking: row j's
	// coefficients a[jb+r][j] (r < t) in Z8-Z14; its pivot receives their
	// updates and is checked, then each entry c > j receives them in one
	// pass (r in order, sources a[jb+r][c] read through SI = &a[jb][c] and
	// CX = &a[jb+4][c]) and is scaled by the pivot's reciprocal as it is
	// stored. AX = &a[j][c], DX columns left, R12 = &a[jb][j], R11 j.
	MOVQ R10, R11

	// t = 0
	MOVQ R11, AX
	IMULQ R9, AX
	ADDQ DI, AX
	MOVQ R11, DX
	SHLQ $6, DX
	ADDQ DX, AX
	MOVQ R10, R12
	IMULQ R9, R12
	ADDQ DI, R12
	ADDQ DX, R12
	VMOVUPD (AX), Z0
	VCMPPD $0x1e, Z29, Z0, K1
	VCMPPD $0x12, Z30, Z0, K2
	KANDW K1, K2, K1
	KMOVW K1, SI
	NOTQ SI
	ANDQ $0xff, SI
	ORQ  SI, BX
	VSQRTPD Z0, Z1
	VDIVPD Z1, Z31, Z2
	VMOVUPD Z1, (AX)
	MOVQ w+24(FP), SI
	VMOVUPD Z2, (SI)(DX*1)
	MOVQ R8, DX
	SUBQ R11, DX
	DECQ DX
	JZ   cbp0done
	ADDQ $64, AX
	LEAQ 64(R12), SI
	LEAQ (SI)(R9*4), CX

cbp0loop:
	VMOVUPD (AX), Z3
	VMULPD Z2, Z3, Z3
	VMOVUPD Z3, (AX)
	ADDQ $64, AX
	ADDQ $64, SI
	ADDQ $64, CX
	DECQ DX
	JNZ  cbp0loop

cbp0done:
	INCQ R11

	// t = 1
	MOVQ R11, AX
	IMULQ R9, AX
	ADDQ DI, AX
	MOVQ R11, DX
	SHLQ $6, DX
	ADDQ DX, AX
	MOVQ R10, R12
	IMULQ R9, R12
	ADDQ DI, R12
	ADDQ DX, R12
	MOVQ R12, SI
	LEAQ (R12)(R9*4), CX
	VMOVUPD (SI), Z8
	VMOVUPD (AX), Z0
	VFNMADD231PD Z8, Z8, Z0
	VCMPPD $0x1e, Z29, Z0, K1
	VCMPPD $0x12, Z30, Z0, K2
	KANDW K1, K2, K1
	KMOVW K1, SI
	NOTQ SI
	ANDQ $0xff, SI
	ORQ  SI, BX
	VSQRTPD Z0, Z1
	VDIVPD Z1, Z31, Z2
	VMOVUPD Z1, (AX)
	MOVQ w+24(FP), SI
	VMOVUPD Z2, (SI)(DX*1)
	MOVQ R8, DX
	SUBQ R11, DX
	DECQ DX
	JZ   cbp1done
	ADDQ $64, AX
	LEAQ 64(R12), SI
	LEAQ (SI)(R9*4), CX

cbp1loop:
	VMOVUPD (AX), Z3
	VFNMADD231PD (SI), Z8, Z3
	VMULPD Z2, Z3, Z3
	VMOVUPD Z3, (AX)
	ADDQ $64, AX
	ADDQ $64, SI
	ADDQ $64, CX
	DECQ DX
	JNZ  cbp1loop

cbp1done:
	INCQ R11

	// t = 2
	MOVQ R11, AX
	IMULQ R9, AX
	ADDQ DI, AX
	MOVQ R11, DX
	SHLQ $6, DX
	ADDQ DX, AX
	MOVQ R10, R12
	IMULQ R9, R12
	ADDQ DI, R12
	ADDQ DX, R12
	MOVQ R12, SI
	LEAQ (R12)(R9*4), CX
	VMOVUPD (SI), Z8
	VMOVUPD (SI)(R9*1), Z9
	VMOVUPD (AX), Z0
	VFNMADD231PD Z8, Z8, Z0
	VFNMADD231PD Z9, Z9, Z0
	VCMPPD $0x1e, Z29, Z0, K1
	VCMPPD $0x12, Z30, Z0, K2
	KANDW K1, K2, K1
	KMOVW K1, SI
	NOTQ SI
	ANDQ $0xff, SI
	ORQ  SI, BX
	VSQRTPD Z0, Z1
	VDIVPD Z1, Z31, Z2
	VMOVUPD Z1, (AX)
	MOVQ w+24(FP), SI
	VMOVUPD Z2, (SI)(DX*1)
	MOVQ R8, DX
	SUBQ R11, DX
	DECQ DX
	JZ   cbp2done
	ADDQ $64, AX
	LEAQ 64(R12), SI
	LEAQ (SI)(R9*4), CX

cbp2loop:
	VMOVUPD (AX), Z3
	VFNMADD231PD (SI), Z8, Z3
	VFNMADD231PD (SI)(R9*1), Z9, Z3
	VMULPD Z2, Z3, Z3
	VMOVUPD Z3, (AX)
	ADDQ $64, AX
	ADDQ $64, SI
	ADDQ $64, CX
	DECQ DX
	JNZ  cbp2loop

cbp2done:
	INCQ R11

	// t = 3
	MOVQ R11, AX
	IMULQ R9, AX
	ADDQ DI, AX
	MOVQ R11, DX
	SHLQ $6, DX
	ADDQ DX, AX
	MOVQ R10, R12
	IMULQ R9, R12
	ADDQ DI, R12
	ADDQ DX, R12
	MOVQ R12, SI
	LEAQ (R12)(R9*4), CX
	VMOVUPD (SI), Z8
	VMOVUPD (SI)(R9*1), Z9
	VMOVUPD (SI)(R9*2), Z10
	VMOVUPD (AX), Z0
	VFNMADD231PD Z8, Z8, Z0
	VFNMADD231PD Z9, Z9, Z0
	VFNMADD231PD Z10, Z10, Z0
	VCMPPD $0x1e, Z29, Z0, K1
	VCMPPD $0x12, Z30, Z0, K2
	KANDW K1, K2, K1
	KMOVW K1, SI
	NOTQ SI
	ANDQ $0xff, SI
	ORQ  SI, BX
	VSQRTPD Z0, Z1
	VDIVPD Z1, Z31, Z2
	VMOVUPD Z1, (AX)
	MOVQ w+24(FP), SI
	VMOVUPD Z2, (SI)(DX*1)
	MOVQ R8, DX
	SUBQ R11, DX
	DECQ DX
	JZ   cbp3done
	ADDQ $64, AX
	LEAQ 64(R12), SI
	LEAQ (SI)(R9*4), CX

cbp3loop:
	VMOVUPD (AX), Z3
	VFNMADD231PD (SI), Z8, Z3
	VFNMADD231PD (SI)(R9*1), Z9, Z3
	VFNMADD231PD (SI)(R9*2), Z10, Z3
	VMULPD Z2, Z3, Z3
	VMOVUPD Z3, (AX)
	ADDQ $64, AX
	ADDQ $64, SI
	ADDQ $64, CX
	DECQ DX
	JNZ  cbp3loop

cbp3done:
	INCQ R11

	// t = 4
	MOVQ R11, AX
	IMULQ R9, AX
	ADDQ DI, AX
	MOVQ R11, DX
	SHLQ $6, DX
	ADDQ DX, AX
	MOVQ R10, R12
	IMULQ R9, R12
	ADDQ DI, R12
	ADDQ DX, R12
	MOVQ R12, SI
	LEAQ (R12)(R9*4), CX
	VMOVUPD (SI), Z8
	VMOVUPD (SI)(R9*1), Z9
	VMOVUPD (SI)(R9*2), Z10
	VMOVUPD (SI)(R13*1), Z11
	VMOVUPD (AX), Z0
	VFNMADD231PD Z8, Z8, Z0
	VFNMADD231PD Z9, Z9, Z0
	VFNMADD231PD Z10, Z10, Z0
	VFNMADD231PD Z11, Z11, Z0
	VCMPPD $0x1e, Z29, Z0, K1
	VCMPPD $0x12, Z30, Z0, K2
	KANDW K1, K2, K1
	KMOVW K1, SI
	NOTQ SI
	ANDQ $0xff, SI
	ORQ  SI, BX
	VSQRTPD Z0, Z1
	VDIVPD Z1, Z31, Z2
	VMOVUPD Z1, (AX)
	MOVQ w+24(FP), SI
	VMOVUPD Z2, (SI)(DX*1)
	MOVQ R8, DX
	SUBQ R11, DX
	DECQ DX
	JZ   cbp4done
	ADDQ $64, AX
	LEAQ 64(R12), SI
	LEAQ (SI)(R9*4), CX

cbp4loop:
	VMOVUPD (AX), Z3
	VFNMADD231PD (SI), Z8, Z3
	VFNMADD231PD (SI)(R9*1), Z9, Z3
	VFNMADD231PD (SI)(R9*2), Z10, Z3
	VFNMADD231PD (SI)(R13*1), Z11, Z3
	VMULPD Z2, Z3, Z3
	VMOVUPD Z3, (AX)
	ADDQ $64, AX
	ADDQ $64, SI
	ADDQ $64, CX
	DECQ DX
	JNZ  cbp4loop

cbp4done:
	INCQ R11

	// t = 5
	MOVQ R11, AX
	IMULQ R9, AX
	ADDQ DI, AX
	MOVQ R11, DX
	SHLQ $6, DX
	ADDQ DX, AX
	MOVQ R10, R12
	IMULQ R9, R12
	ADDQ DI, R12
	ADDQ DX, R12
	MOVQ R12, SI
	LEAQ (R12)(R9*4), CX
	VMOVUPD (SI), Z8
	VMOVUPD (SI)(R9*1), Z9
	VMOVUPD (SI)(R9*2), Z10
	VMOVUPD (SI)(R13*1), Z11
	VMOVUPD (CX), Z12
	VMOVUPD (AX), Z0
	VFNMADD231PD Z8, Z8, Z0
	VFNMADD231PD Z9, Z9, Z0
	VFNMADD231PD Z10, Z10, Z0
	VFNMADD231PD Z11, Z11, Z0
	VFNMADD231PD Z12, Z12, Z0
	VCMPPD $0x1e, Z29, Z0, K1
	VCMPPD $0x12, Z30, Z0, K2
	KANDW K1, K2, K1
	KMOVW K1, SI
	NOTQ SI
	ANDQ $0xff, SI
	ORQ  SI, BX
	VSQRTPD Z0, Z1
	VDIVPD Z1, Z31, Z2
	VMOVUPD Z1, (AX)
	MOVQ w+24(FP), SI
	VMOVUPD Z2, (SI)(DX*1)
	MOVQ R8, DX
	SUBQ R11, DX
	DECQ DX
	JZ   cbp5done
	ADDQ $64, AX
	LEAQ 64(R12), SI
	LEAQ (SI)(R9*4), CX

cbp5loop:
	VMOVUPD (AX), Z3
	VFNMADD231PD (SI), Z8, Z3
	VFNMADD231PD (SI)(R9*1), Z9, Z3
	VFNMADD231PD (SI)(R9*2), Z10, Z3
	VFNMADD231PD (SI)(R13*1), Z11, Z3
	VFNMADD231PD (CX), Z12, Z3
	VMULPD Z2, Z3, Z3
	VMOVUPD Z3, (AX)
	ADDQ $64, AX
	ADDQ $64, SI
	ADDQ $64, CX
	DECQ DX
	JNZ  cbp5loop

cbp5done:
	INCQ R11

	// t = 6
	MOVQ R11, AX
	IMULQ R9, AX
	ADDQ DI, AX
	MOVQ R11, DX
	SHLQ $6, DX
	ADDQ DX, AX
	MOVQ R10, R12
	IMULQ R9, R12
	ADDQ DI, R12
	ADDQ DX, R12
	MOVQ R12, SI
	LEAQ (R12)(R9*4), CX
	VMOVUPD (SI), Z8
	VMOVUPD (SI)(R9*1), Z9
	VMOVUPD (SI)(R9*2), Z10
	VMOVUPD (SI)(R13*1), Z11
	VMOVUPD (CX), Z12
	VMOVUPD (CX)(R9*1), Z13
	VMOVUPD (AX), Z0
	VFNMADD231PD Z8, Z8, Z0
	VFNMADD231PD Z9, Z9, Z0
	VFNMADD231PD Z10, Z10, Z0
	VFNMADD231PD Z11, Z11, Z0
	VFNMADD231PD Z12, Z12, Z0
	VFNMADD231PD Z13, Z13, Z0
	VCMPPD $0x1e, Z29, Z0, K1
	VCMPPD $0x12, Z30, Z0, K2
	KANDW K1, K2, K1
	KMOVW K1, SI
	NOTQ SI
	ANDQ $0xff, SI
	ORQ  SI, BX
	VSQRTPD Z0, Z1
	VDIVPD Z1, Z31, Z2
	VMOVUPD Z1, (AX)
	MOVQ w+24(FP), SI
	VMOVUPD Z2, (SI)(DX*1)
	MOVQ R8, DX
	SUBQ R11, DX
	DECQ DX
	JZ   cbp6done
	ADDQ $64, AX
	LEAQ 64(R12), SI
	LEAQ (SI)(R9*4), CX

cbp6loop:
	VMOVUPD (AX), Z3
	VFNMADD231PD (SI), Z8, Z3
	VFNMADD231PD (SI)(R9*1), Z9, Z3
	VFNMADD231PD (SI)(R9*2), Z10, Z3
	VFNMADD231PD (SI)(R13*1), Z11, Z3
	VFNMADD231PD (CX), Z12, Z3
	VFNMADD231PD (CX)(R9*1), Z13, Z3
	VMULPD Z2, Z3, Z3
	VMOVUPD Z3, (AX)
	ADDQ $64, AX
	ADDQ $64, SI
	ADDQ $64, CX
	DECQ DX
	JNZ  cbp6loop

cbp6done:
	INCQ R11

	// t = 7
	MOVQ R11, AX
	IMULQ R9, AX
	ADDQ DI, AX
	MOVQ R11, DX
	SHLQ $6, DX
	ADDQ DX, AX
	MOVQ R10, R12
	IMULQ R9, R12
	ADDQ DI, R12
	ADDQ DX, R12
	MOVQ R12, SI
	LEAQ (R12)(R9*4), CX
	VMOVUPD (SI), Z8
	VMOVUPD (SI)(R9*1), Z9
	VMOVUPD (SI)(R9*2), Z10
	VMOVUPD (SI)(R13*1), Z11
	VMOVUPD (CX), Z12
	VMOVUPD (CX)(R9*1), Z13
	VMOVUPD (CX)(R9*2), Z14
	VMOVUPD (AX), Z0
	VFNMADD231PD Z8, Z8, Z0
	VFNMADD231PD Z9, Z9, Z0
	VFNMADD231PD Z10, Z10, Z0
	VFNMADD231PD Z11, Z11, Z0
	VFNMADD231PD Z12, Z12, Z0
	VFNMADD231PD Z13, Z13, Z0
	VFNMADD231PD Z14, Z14, Z0
	VCMPPD $0x1e, Z29, Z0, K1
	VCMPPD $0x12, Z30, Z0, K2
	KANDW K1, K2, K1
	KMOVW K1, SI
	NOTQ SI
	ANDQ $0xff, SI
	ORQ  SI, BX
	VSQRTPD Z0, Z1
	VDIVPD Z1, Z31, Z2
	VMOVUPD Z1, (AX)
	MOVQ w+24(FP), SI
	VMOVUPD Z2, (SI)(DX*1)
	MOVQ R8, DX
	SUBQ R11, DX
	DECQ DX
	JZ   cbp7done
	ADDQ $64, AX
	LEAQ 64(R12), SI
	LEAQ (SI)(R9*4), CX

cbp7loop:
	VMOVUPD (AX), Z3
	VFNMADD231PD (SI), Z8, Z3
	VFNMADD231PD (SI)(R9*1), Z9, Z3
	VFNMADD231PD (SI)(R9*2), Z10, Z3
	VFNMADD231PD (SI)(R13*1), Z11, Z3
	VFNMADD231PD (CX), Z12, Z3
	VFNMADD231PD (CX)(R9*1), Z13, Z3
	VFNMADD231PD (CX)(R9*2), Z14, Z3
	VMULPD Z2, Z3, Z3
	VMOVUPD Z3, (AX)
	ADDQ $64, AX
	ADDQ $64, SI
	ADDQ $64, CX
	DECQ DX
	JNZ  cbp7loop

cbp7done:
	INCQ R11

cbtrail:
	// Rows i ≥ jb+8 two at a time: the coefficients a[jb+r][i] in Z0-Z7
	// and a[jb+r][i+1] in Z8-Z15; entry (i, i) first, then for c > i the
	// sources a[jb+r][c] in Z16-Z23 serve both rows: eight multiply-adds
	// into each of a[i][c] (Z24) and a[i+1][c] (Z25), r = 0…7.
	LEAQ (R9)(R9*2), R12
	LEAQ 8(R10), DX

cbtrow:
	CMPQ DX, R8
	JGE  cbtnext
	MOVQ R10, SI
	IMULQ R9, SI
	ADDQ DI, SI
	MOVQ DX, CX
	SHLQ $6, CX
	ADDQ CX, SI
	LEAQ (SI)(R9*4), R13
	VMOVUPD (SI), Z0
	VMOVUPD (SI)(R9*1), Z1
	VMOVUPD (SI)(R9*2), Z2
	VMOVUPD (SI)(R12*1), Z3
	VMOVUPD (R13), Z4
	VMOVUPD (R13)(R9*1), Z5
	VMOVUPD (R13)(R9*2), Z6
	VMOVUPD (R13)(R12*1), Z7
	VMOVUPD 64(SI), Z8
	VMOVUPD 64(SI)(R9*1), Z9
	VMOVUPD 64(SI)(R9*2), Z10
	VMOVUPD 64(SI)(R12*1), Z11
	VMOVUPD 64(R13), Z12
	VMOVUPD 64(R13)(R9*1), Z13
	VMOVUPD 64(R13)(R9*2), Z14
	VMOVUPD 64(R13)(R12*1), Z15
	MOVQ DX, AX
	IMULQ R9, AX
	ADDQ DI, AX
	ADDQ CX, AX
	VMOVUPD (AX), Z24
	VFNMADD231PD Z0, Z0, Z24
	VFNMADD231PD Z1, Z1, Z24
	VFNMADD231PD Z2, Z2, Z24
	VFNMADD231PD Z3, Z3, Z24
	VFNMADD231PD Z4, Z4, Z24
	VFNMADD231PD Z5, Z5, Z24
	VFNMADD231PD Z6, Z6, Z24
	VFNMADD231PD Z7, Z7, Z24
	VMOVUPD Z24, (AX)
	ADDQ $64, SI
	ADDQ $64, R13
	ADDQ $64, AX
	MOVQ R8, CX
	SUBQ DX, CX
	DECQ CX

cbtloop:
	VMOVUPD (SI), Z16
	VMOVUPD (SI)(R9*1), Z17
	VMOVUPD (SI)(R9*2), Z18
	VMOVUPD (SI)(R12*1), Z19
	VMOVUPD (R13), Z20
	VMOVUPD (R13)(R9*1), Z21
	VMOVUPD (R13)(R9*2), Z22
	VMOVUPD (R13)(R12*1), Z23
	VMOVUPD (AX), Z24
	VMOVUPD (AX)(R9*1), Z25
	VFNMADD231PD Z16, Z0, Z24
	VFNMADD231PD Z16, Z8, Z25
	VFNMADD231PD Z17, Z1, Z24
	VFNMADD231PD Z17, Z9, Z25
	VFNMADD231PD Z18, Z2, Z24
	VFNMADD231PD Z18, Z10, Z25
	VFNMADD231PD Z19, Z3, Z24
	VFNMADD231PD Z19, Z11, Z25
	VFNMADD231PD Z20, Z4, Z24
	VFNMADD231PD Z20, Z12, Z25
	VFNMADD231PD Z21, Z5, Z24
	VFNMADD231PD Z21, Z13, Z25
	VFNMADD231PD Z22, Z6, Z24
	VFNMADD231PD Z22, Z14, Z25
	VFNMADD231PD Z23, Z7, Z24
	VFNMADD231PD Z23, Z15, Z25
	VMOVUPD Z24, (AX)
	VMOVUPD Z25, (AX)(R9*1)
	ADDQ $64, SI
	ADDQ $64, R13
	ADDQ $64, AX
	DECQ CX
	JNZ  cbtloop
	ADDQ $2, DX
	JMP  cbtrow

cbtnext:
	ADDQ $8, R10
	JMP  cbblock

cbsolve:
	// Forward: z_p = b_p·r_p, b_i = fma(−U[p][i], z_p, b_i) for i > p.
	MOVQ b+16(FP), SI
	MOVQ w+24(FP), R10
	XORQ DX, DX

cbfw:
	CMPQ DX, R8
	JGE  cbbw0
	MOVQ DX, CX
	SHLQ $6, CX
	VMOVUPD (SI)(CX*1), Z0
	VMULPD (R10)(CX*1), Z0, Z0
	VMOVUPD Z0, (SI)(CX*1)
	LEAQ 64(SI)(CX*1), R11
	MOVQ DX, AX
	IMULQ R9, AX
	ADDQ DI, AX
	LEAQ 64(AX)(CX*1), AX
	MOVQ R8, R13
	SUBQ DX, R13
	DECQ R13
	JZ   cbfwnext

cbfwl:
	VMOVUPD (R11), Z1
	VFNMADD231PD (AX), Z0, Z1
	VMOVUPD Z1, (R11)
	ADDQ $64, R11
	ADDQ $64, AX
	DECQ R13
	JNZ  cbfwl

cbfwnext:
	INCQ DX
	JMP  cbfw

cbbw0:
	// Back: x_i = b_i·r_i, b_q = fma(−U[q][i], x_i, b_q) for q < i.
	MOVQ R8, DX

cbbw:
	DECQ DX
	JL   cbdone
	MOVQ DX, CX
	SHLQ $6, CX
	VMOVUPD (SI)(CX*1), Z0
	VMULPD (R10)(CX*1), Z0, Z0
	VMOVUPD Z0, (SI)(CX*1)
	LEAQ (DI)(CX*1), AX
	MOVQ SI, R11
	MOVQ DX, R13
	TESTQ R13, R13
	JZ   cbbw

cbbwl:
	VMOVUPD (R11), Z1
	VFNMADD231PD (AX), Z0, Z1
	VMOVUPD Z1, (R11)
	ADDQ $64, R11
	ADDQ R9, AX
	DECQ R13
	JNZ  cbbwl
	JMP  cbbw

cbdone:
	MOVQ BX, fail+32(FP)
	VZEROUPPER
	RET

// TRANSPOSE8 transposes the 8×8 block of float64 in Z0-Z7 (row r in Zr)
// into Z16-Z23 (column c in Z16+c), through Z8-Z15.
#define TRANSPOSE8 \
	VUNPCKLPD Z1, Z0, Z8; \
	VUNPCKHPD Z1, Z0, Z9; \
	VUNPCKLPD Z3, Z2, Z10; \
	VUNPCKHPD Z3, Z2, Z11; \
	VUNPCKLPD Z5, Z4, Z12; \
	VUNPCKHPD Z5, Z4, Z13; \
	VUNPCKLPD Z7, Z6, Z14; \
	VUNPCKHPD Z7, Z6, Z15; \
	VSHUFF64X2 $0x88, Z10, Z8, Z0; \
	VSHUFF64X2 $0xdd, Z10, Z8, Z1; \
	VSHUFF64X2 $0x88, Z11, Z9, Z2; \
	VSHUFF64X2 $0xdd, Z11, Z9, Z3; \
	VSHUFF64X2 $0x88, Z14, Z12, Z4; \
	VSHUFF64X2 $0xdd, Z14, Z12, Z5; \
	VSHUFF64X2 $0x88, Z15, Z13, Z6; \
	VSHUFF64X2 $0xdd, Z15, Z13, Z7; \
	VSHUFF64X2 $0x88, Z4, Z0, Z16; \
	VSHUFF64X2 $0xdd, Z4, Z0, Z20; \
	VSHUFF64X2 $0x88, Z5, Z1, Z18; \
	VSHUFF64X2 $0xdd, Z5, Z1, Z22; \
	VSHUFF64X2 $0x88, Z6, Z2, Z17; \
	VSHUFF64X2 $0xdd, Z6, Z2, Z21; \
	VSHUFF64X2 $0x88, Z7, Z3, Z19; \
	VSHUFF64X2 $0xdd, Z7, Z3, Z23

// func interleaveAVX512(dst, src *float64, n int)
// The upper triangle of the eight n×n row-major matrices at src (lane l's
// at src + l·n², n a positive multiple of 8) into the batch layout at dst
// (see interleaveGo), by 8×8 blocks: row i's columns from i&^7 on.
//
// Registers: DI dst row pointer, SI src row pointer (lane 0), R13 the same
// for lane 4, R9 one lane's size in bytes (n²·8), R12 3·R9, R8 n, DX row i,
// CX blocks left in the row, AX/BX column offsets (src 8 bytes, dst 64).
TEXT ·interleaveAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), R8
	MOVQ R8, R9
	IMULQ R8, R9
	SHLQ $3, R9
	LEAQ (R9)(R9*2), R12
	XORQ DX, DX

ilrow:
	CMPQ DX, R8
	JGE  ildone
	// Row i = DX: src offset (i·n + i&^7)·8, dst offset that ·8.
	MOVQ DX, AX
	ANDQ $-8, AX
	MOVQ R8, CX
	SUBQ AX, CX
	SHRQ $3, CX
	MOVQ DX, BX
	IMULQ R8, BX
	ADDQ BX, AX
	SHLQ $3, AX
	MOVQ AX, BX
	SHLQ $3, BX

ilblock:
	MOVQ SI, R10
	ADDQ AX, R10
	LEAQ (R10)(R9*4), R13
	VMOVUPD (R10), Z0
	VMOVUPD (R10)(R9*1), Z1
	VMOVUPD (R10)(R9*2), Z2
	VMOVUPD (R10)(R12*1), Z3
	VMOVUPD (R13), Z4
	VMOVUPD (R13)(R9*1), Z5
	VMOVUPD (R13)(R9*2), Z6
	VMOVUPD (R13)(R12*1), Z7
	TRANSPOSE8
	LEAQ (DI)(BX*1), R10
	VMOVUPD Z16, (R10)
	VMOVUPD Z17, 64(R10)
	VMOVUPD Z18, 128(R10)
	VMOVUPD Z19, 192(R10)
	VMOVUPD Z20, 256(R10)
	VMOVUPD Z21, 320(R10)
	VMOVUPD Z22, 384(R10)
	VMOVUPD Z23, 448(R10)
	ADDQ $64, AX
	ADDQ $512, BX
	DECQ CX
	JNZ  ilblock
	INCQ DX
	JMP  ilrow

ildone:
	VZEROUPPER
	RET
