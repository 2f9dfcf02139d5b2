//go:build amd64

#include "textflag.h"

// Scoring kernels for score_amd64.go. Register use avoids BP (frame
// pointer), R14 (g) and R15 (GOT base under dynamic linking).

// A load from offset (8-l)*4 of scoremask gives l all-ones int32 lanes
// followed by zeros (AVX2 store masks).
DATA scoremask<>+0(SB)/8, $0xffffffffffffffff
DATA scoremask<>+8(SB)/8, $0xffffffffffffffff
DATA scoremask<>+16(SB)/8, $0xffffffffffffffff
DATA scoremask<>+24(SB)/8, $0xffffffffffffffff
DATA scoremask<>+32(SB)/8, $0
DATA scoremask<>+40(SB)/8, $0
DATA scoremask<>+48(SB)/8, $0
DATA scoremask<>+56(SB)/8, $0
GLOBL scoremask<>(SB), RODATA|NOPTR, $64

// ---------------------------------------------------------------------------
// scoreBlock: dst[i*ldd + j] = Σ_c x[i*k + c] · panel(j)[c][j%64]. With
// thr != nil, bit j%64 of hits[i*w + j/64] = (thr[i] < score) where
// w = ceil(n/64) (predicate LT_OQ: false for NaN), and a user's scores of a
// panel (AVX2: a quarter) are stored only if one of its bits is set.
//
// The packed items come in panels of 64 items, k rows of 64 floats (256
// bytes) each. The loops go panel by panel (the panel stays in L1) and,
// within a panel, over groups of 4 users, then over the remaining users one
// at a time.
//
// Registers (both paths): DI &dst[0][j0], BX current panel (AVX2: the
// quarter of it), R8 ldd*4, R9 k*4 (user row stride), R10 3*k*4, R12 items
// left (n - j0), AX &x[i][0] of the current group, R13 &dst[i][j0], DX
// users left, CX factors left, SI &x[i][c], R11 &panel[c][0]. After the
// factor loop, CX, SI and R11 serve the compares. Locals: hp the hits word
// of user 0 for the panel (AVX2: its quarter's 16 bits), hs w*8.

// SB5_TILE applies op (VMULPS or VFMADD231PS) to the 4×4 tile of vectors:
// item vectors Z16-Z19 times the factors of the 4 users Z20-Z23 into
// Z0-Z15 (user r, vector v in Z(4r+v)).
#define SB5_TILE(op) \
	op Z16, Z20, Z0; \
	op Z17, Z20, Z1; \
	op Z18, Z20, Z2; \
	op Z19, Z20, Z3; \
	op Z16, Z21, Z4; \
	op Z17, Z21, Z5; \
	op Z18, Z21, Z6; \
	op Z19, Z21, Z7; \
	op Z16, Z22, Z8; \
	op Z17, Z22, Z9; \
	op Z18, Z22, Z10; \
	op Z19, Z22, Z11; \
	op Z16, Z23, Z12; \
	op Z17, Z23, Z13; \
	op Z18, Z23, Z14; \
	op Z19, Z23, Z15

// SB5_LOAD loads row c of the panel (R11) and broadcasts factor c of the 4
// users (SI).
#define SB5_LOAD \
	VMOVUPS (R11), Z16; \
	VMOVUPS 64(R11), Z17; \
	VMOVUPS 128(R11), Z18; \
	VMOVUPS 192(R11), Z19; \
	VBROADCASTSS (SI), Z20; \
	VBROADCASTSS (SI)(R9*1), Z21; \
	VBROADCASTSS (SI)(R9*2), Z22; \
	VBROADCASTSS (SI)(R10*1), Z23

// SB5_STORE stores one user's 64 scores a, b, c, d under the masks K1-K4
// (the items < n) and moves R13 to the next user's row.
#define SB5_STORE(a, b, c, d) \
	VMOVUPS a, K1, (R13); \
	VMOVUPS b, K2, 64(R13); \
	VMOVUPS c, K3, 128(R13); \
	VMOVUPS d, K4, 192(R13); \
	ADDQ R8, R13

// SB5_HITS compares one user's 64 scores a, b, c, d (masked by K1-K4) with
// the threshold in t and stores the 64-bit mask at (CX) and, if it is not
// 0, the scores at (R13) (label skip: past those stores); it moves R13 and
// CX to the next user's row and word.
#define SB5_HITS(t, a, b, c, d, skip) \
	VCMPPS   $0x11, a, t, K1, K5; \
	VCMPPS   $0x11, b, t, K2, K6; \
	KUNPCKWD K5, K6, K5; \
	VCMPPS   $0x11, c, t, K3, K6; \
	VCMPPS   $0x11, d, t, K4, K7; \
	KUNPCKWD K6, K7, K6; \
	KUNPCKDQ K5, K6, K5; \
	KMOVQ    K5, (CX); \
	ADDQ     hs-16(SP), CX; \
	KORTESTQ K5, K5; \
	JZ       skip; \
	VMOVUPS  a, K1, (R13); \
	VMOVUPS  b, K2, 64(R13); \
	VMOVUPS  c, K3, 128(R13); \
	VMOVUPS  d, K4, 192(R13); \
skip: \
	ADDQ     R8, R13

// SB_HITROW points SI at thr[i] and CX at the hits word of user i for the
// panel, i = m - DX being the first user of the group; it jumps to skip
// when thr is nil.
#define SB_HITROW(skip) \
	MOVQ  thr+56(FP), SI; \
	TESTQ SI, SI; \
	JZ    skip; \
	MOVQ  m+32(FP), CX; \
	SUBQ  DX, CX; \
	LEAQ  (SI)(CX*4), SI; \
	IMULQ hs-16(SP), CX; \
	ADDQ  hp-8(SP), CX

// func scoreBlockAVX512(dst *float32, ldd int, x *float32, k, m int, packed *float32, n int, thr *float32, hits *uint64)
TEXT ·scoreBlockAVX512(SB), NOSPLIT, $16-72
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R8
	SHLQ $2, R8
	MOVQ k+24(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R10
	MOVQ packed+40(FP), BX
	MOVQ n+48(FP), R12
	MOVQ hits+64(FP), AX
	MOVQ AX, hp-8(SP)
	LEAQ 63(R12), AX
	SHRQ $6, AX
	SHLQ $3, AX
	MOVQ AX, hs-16(SP)

sb5panel:
	// Store masks of the panel's four vectors: the low min(n-j0, 64) bits
	// of AX, 16 per mask.
	MOVQ $-1, AX
	CMPQ R12, $64
	JGE  sb5masks
	MOVQ R12, CX
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX

sb5masks:
	KMOVW AX, K1
	SHRQ  $16, AX
	KMOVW AX, K2
	SHRQ  $16, AX
	KMOVW AX, K3
	SHRQ  $16, AX
	KMOVW AX, K4

	MOVQ x+16(FP), AX
	MOVQ DI, R13
	MOVQ m+32(FP), DX
	CMPQ DX, $4
	JLT  sb5rows

sb5group:
	MOVQ AX, SI
	MOVQ BX, R11
	MOVQ k+24(FP), CX
	SB5_LOAD
	SB5_TILE(VMULPS)
	ADDQ $4, SI
	ADDQ $256, R11
	DECQ CX
	JZ   sb5gstore

sb5gloop:
	SB5_LOAD
	SB5_TILE(VFMADD231PS)
	ADDQ $4, SI
	ADDQ $256, R11
	DECQ CX
	JNZ  sb5gloop

sb5gstore:
	SB_HITROW(sb5gall)
	VBROADCASTSS (SI), Z20
	VBROADCASTSS 4(SI), Z21
	VBROADCASTSS 8(SI), Z22
	VBROADCASTSS 12(SI), Z23
	SB5_HITS(Z20, Z0, Z1, Z2, Z3, sb5h0)
	SB5_HITS(Z21, Z4, Z5, Z6, Z7, sb5h1)
	SB5_HITS(Z22, Z8, Z9, Z10, Z11, sb5h2)
	SB5_HITS(Z23, Z12, Z13, Z14, Z15, sb5h3)
	JMP sb5gnext

sb5gall:
	SB5_STORE(Z0, Z1, Z2, Z3)
	SB5_STORE(Z4, Z5, Z6, Z7)
	SB5_STORE(Z8, Z9, Z10, Z11)
	SB5_STORE(Z12, Z13, Z14, Z15)

sb5gnext:
	LEAQ (AX)(R9*4), AX
	SUBQ $4, DX
	CMPQ DX, $4
	JGE  sb5group

sb5rows:
	TESTQ DX, DX
	JZ    sb5next

sb5row:
	// One user: 64 scores in Z0-Z3.
	MOVQ AX, SI
	MOVQ BX, R11
	MOVQ k+24(FP), CX
	VBROADCASTSS (SI), Z20
	VMULPS (R11), Z20, Z0
	VMULPS 64(R11), Z20, Z1
	VMULPS 128(R11), Z20, Z2
	VMULPS 192(R11), Z20, Z3
	ADDQ $4, SI
	ADDQ $256, R11
	DECQ CX
	JZ   sb5rstore

sb5rloop:
	VBROADCASTSS (SI), Z20
	VFMADD231PS (R11), Z20, Z0
	VFMADD231PS 64(R11), Z20, Z1
	VFMADD231PS 128(R11), Z20, Z2
	VFMADD231PS 192(R11), Z20, Z3
	ADDQ $4, SI
	ADDQ $256, R11
	DECQ CX
	JNZ  sb5rloop

sb5rstore:
	SB_HITROW(sb5rall)
	VBROADCASTSS (SI), Z20
	SB5_HITS(Z20, Z0, Z1, Z2, Z3, sb5hr)
	JMP sb5rnext

sb5rall:
	SB5_STORE(Z0, Z1, Z2, Z3)

sb5rnext:
	ADDQ R9, AX
	DECQ DX
	JNZ  sb5row

sb5next:
	SUBQ $64, R12
	JLE  sb5done
	ADDQ $256, DI
	ADDQ $8, hp-8(SP)
	MOVQ R9, CX
	SHLQ $6, CX
	ADDQ CX, BX
	JMP  sb5panel

sb5done:
	VZEROUPPER
	RET

// SB2_TILE applies op to the 4×2 tile: item vectors Y8, Y9 times the
// factors of the 4 users Y10-Y13 into Y0-Y7 (user r, vector v in Y(2r+v)).
#define SB2_TILE(op) \
	op Y8, Y10, Y0; \
	op Y9, Y10, Y1; \
	op Y8, Y11, Y2; \
	op Y9, Y11, Y3; \
	op Y8, Y12, Y4; \
	op Y9, Y12, Y5; \
	op Y8, Y13, Y6; \
	op Y9, Y13, Y7

#define SB2_LOAD \
	VMOVUPS (R11), Y8; \
	VMOVUPS 32(R11), Y9; \
	VBROADCASTSS (SI), Y10; \
	VBROADCASTSS (SI)(R9*1), Y11; \
	VBROADCASTSS (SI)(R9*2), Y12; \
	VBROADCASTSS (SI)(R10*1), Y13

// SB2_STORE stores one user's 16 scores a, b (whole quarter) and moves R13
// to the next user's row; SB2_MSTORE does it under the masks Y14, Y15.
#define SB2_STORE(a, b) \
	VMOVUPS a, (R13); \
	VMOVUPS b, 32(R13); \
	ADDQ R8, R13

#define SB2_MSTORE(a, b) \
	VMASKMOVPS a, Y14, (R13); \
	VMASKMOVPS b, Y15, 32(R13); \
	ADDQ R8, R13

// SB2_HITS compares one user's 16 scores a, b with the threshold at (SI),
// stores the 16 bits (cut to the items < n by the local lm) at (CX),
// moves SI and CX to the next user and jumps to skip if no bit is set.
// SB2_FHITS and SB2_MHITS then store the scores (whole quarter, or under
// the masks Y14, Y15) and move R13 to the next user's row.
#define SB2_HITS(a, b, skip) \
	VBROADCASTSS (SI), Y10; \
	VCMPPS       $0x11, a, Y10, Y8; \
	VCMPPS       $0x11, b, Y10, Y9; \
	VMOVMSKPS    Y8, R11; \
	VMOVMSKPS    Y9, AX; \
	SHLL         $8, AX; \
	ORL          AX, R11; \
	ANDL         lm-24(SP), R11; \
	MOVW         R11, (CX); \
	ADDQ         $4, SI; \
	ADDQ         hs-16(SP), CX; \
	TESTL        R11, R11; \
	JZ           skip

#define SB2_FHITS(a, b, skip) \
	SB2_HITS(a, b, skip); \
	VMOVUPS a, (R13); \
	VMOVUPS b, 32(R13); \
skip: \
	ADDQ R8, R13

#define SB2_MHITS(a, b, skip) \
	SB2_HITS(a, b, skip); \
	VMASKMOVPS a, Y14, (R13); \
	VMASKMOVPS b, Y15, 32(R13); \
skip: \
	ADDQ R8, R13

// func scoreBlockAVX2(dst *float32, ldd int, x *float32, k, m int, packed *float32, n int, thr *float32, hits *uint64)
// The AVX2 path walks each panel by quarters of 16 items. The hits words
// of a panel are cleared at its first quarter; each quarter then writes
// its 16 bits, and its scores only if one is set. SB2_HITS borrows AX,
// saved in the local xg.
TEXT ·scoreBlockAVX2(SB), NOSPLIT, $32-72
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R8
	SHLQ $2, R8
	MOVQ k+24(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R10
	MOVQ packed+40(FP), BX
	MOVQ n+48(FP), R12
	MOVQ hits+64(FP), AX
	MOVQ AX, hp-8(SP)
	LEAQ 63(R12), AX
	SHRQ $6, AX
	SHLQ $3, AX
	MOVQ AX, hs-16(SP)

sb2quarter:
	// lm: the bits of the quarter's items < n.
	MOVQ $0xffff, AX
	CMPQ R12, $16
	JGE  sb2clear
	MOVQ R12, CX
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	MOVQ AX, lm-24(SP)

	// A partial quarter: store masks for min(n-j0, 8) and max(n-j0-8, 0)
	// lanes.
	LEAQ scoremask<>(SB), AX
	MOVQ R12, CX
	CMPQ CX, $8
	JLE  sb2lo
	MOVQ $8, CX

sb2lo:
	MOVQ    $8, SI
	SUBQ    CX, SI
	VMOVDQU (AX)(SI*4), Y14
	MOVQ    R12, CX
	SUBQ    $8, CX
	JGE     sb2hi
	XORQ    CX, CX

sb2hi:
	MOVQ    $8, SI
	SUBQ    CX, SI
	VMOVDQU (AX)(SI*4), Y15
	JMP     sb2clear2

sb2clear:
	MOVQ AX, lm-24(SP)

sb2clear2:
	// At a panel's first quarter (j0 ≡ 0 mod 64) clear its hits words.
	MOVQ  thr+56(FP), AX
	TESTQ AX, AX
	JZ    sb2start
	MOVQ  n+48(FP), CX
	SUBQ  R12, CX
	TESTQ $63, CX
	JNZ   sb2start
	MOVQ  hp-8(SP), AX
	MOVQ  m+32(FP), CX

sb2zero:
	MOVQ $0, (AX)
	ADDQ hs-16(SP), AX
	DECQ CX
	JNZ  sb2zero

sb2start:
	MOVQ x+16(FP), AX
	MOVQ DI, R13
	MOVQ m+32(FP), DX
	CMPQ DX, $4
	JLT  sb2rows

sb2group:
	MOVQ AX, SI
	MOVQ BX, R11
	MOVQ k+24(FP), CX
	SB2_LOAD
	SB2_TILE(VMULPS)
	ADDQ $4, SI
	ADDQ $256, R11
	DECQ CX
	JZ   sb2gstore

sb2gloop:
	SB2_LOAD
	SB2_TILE(VFMADD231PS)
	ADDQ $4, SI
	ADDQ $256, R11
	DECQ CX
	JNZ  sb2gloop

sb2gstore:
	SB_HITROW(sb2gall)
	MOVQ AX, xg-32(SP)
	CMPQ R12, $16
	JLT  sb2ghm
	SB2_FHITS(Y0, Y1, sb2gf0)
	SB2_FHITS(Y2, Y3, sb2gf1)
	SB2_FHITS(Y4, Y5, sb2gf2)
	SB2_FHITS(Y6, Y7, sb2gf3)
	MOVQ xg-32(SP), AX
	JMP  sb2gnext

sb2ghm:
	SB2_MHITS(Y0, Y1, sb2gm0)
	SB2_MHITS(Y2, Y3, sb2gm1)
	SB2_MHITS(Y4, Y5, sb2gm2)
	SB2_MHITS(Y6, Y7, sb2gm3)
	MOVQ xg-32(SP), AX
	JMP  sb2gnext

sb2gall:
	CMPQ R12, $16
	JLT  sb2gmstore
	SB2_STORE(Y0, Y1)
	SB2_STORE(Y2, Y3)
	SB2_STORE(Y4, Y5)
	SB2_STORE(Y6, Y7)
	JMP  sb2gnext

sb2gmstore:
	SB2_MSTORE(Y0, Y1)
	SB2_MSTORE(Y2, Y3)
	SB2_MSTORE(Y4, Y5)
	SB2_MSTORE(Y6, Y7)

sb2gnext:
	LEAQ (AX)(R9*4), AX
	SUBQ $4, DX
	CMPQ DX, $4
	JGE  sb2group

sb2rows:
	TESTQ DX, DX
	JZ    sb2next

sb2row:
	// One user: 16 scores in Y0, Y1.
	MOVQ AX, SI
	MOVQ BX, R11
	MOVQ k+24(FP), CX
	VBROADCASTSS (SI), Y10
	VMULPS (R11), Y10, Y0
	VMULPS 32(R11), Y10, Y1
	ADDQ $4, SI
	ADDQ $256, R11
	DECQ CX
	JZ   sb2rsum

sb2rloop:
	VBROADCASTSS (SI), Y10
	VFMADD231PS (R11), Y10, Y0
	VFMADD231PS 32(R11), Y10, Y1
	ADDQ $4, SI
	ADDQ $256, R11
	DECQ CX
	JNZ  sb2rloop

sb2rsum:
	SB_HITROW(sb2rall)
	MOVQ AX, xg-32(SP)
	CMPQ R12, $16
	JLT  sb2rhm
	SB2_FHITS(Y0, Y1, sb2rf)
	MOVQ xg-32(SP), AX
	JMP  sb2rnext

sb2rhm:
	SB2_MHITS(Y0, Y1, sb2rm)
	MOVQ xg-32(SP), AX
	JMP  sb2rnext

sb2rall:
	CMPQ R12, $16
	JLT  sb2rmstore
	SB2_STORE(Y0, Y1)
	JMP  sb2rnext

sb2rmstore:
	SB2_MSTORE(Y0, Y1)

sb2rnext:
	ADDQ R9, AX
	DECQ DX
	JNZ  sb2row

sb2next:
	SUBQ $16, R12
	JLE  sb2done
	ADDQ $64, DI
	ADDQ $64, BX
	ADDQ $2, hp-8(SP)

	// At a panel boundary (j0 ≡ 0 mod 64) skip the rest of the panel:
	// BX += k*256 - 256 (hp, 2 bytes a quarter, is at the next word).
	MOVQ  n+48(FP), CX
	SUBQ  R12, CX
	TESTQ $63, CX
	JNZ   sb2quarter
	MOVQ  R9, CX
	SHLQ  $6, CX
	SUBQ  $256, CX
	ADDQ  CX, BX
	JMP   sb2quarter

sb2done:
	VZEROUPPER
	RET
