/* Registers: an asm loop loads known values into rax, rbx, rcx, rbp, r8-r15, sets DF, a non-default
 * MXCSR and x87 control word, two x87 stack values and xmm0-15 (ymm0-15 when the CPU and OS
 * support AVX), then spins until the SIGTERM handler sets a flag. The dump happens while it spins,
 * so the registers are captured mid-loop. After the loop the registers are stored and compared.
 * `regs OUTFILE [sse]`: "sse" forces the xmm variant even when AVX is there. */
#include "common.h"
#include <cpuid.h>
#include <stddef.h>

struct regset {
	uint64_t gpr[12];          /* rax rbx rcx rbp r8 r9 r10 r11 r12 r13 r14 r15 */
	uint64_t rflags;           /* 96 */
	uint32_t mxcsr;            /* 104 */
	uint16_t fcw;              /* 108 */
	uint16_t pad;              /* 110 */
	unsigned char st0[16];     /* 112: 80-bit value */
	unsigned char st1[16];     /* 128 */
	unsigned char vec[16][32]; /* 144 */
} __attribute__((aligned(64)));

_Static_assert(offsetof(struct regset, rflags) == 96, "layout");
_Static_assert(offsetof(struct regset, mxcsr) == 104, "layout");
_Static_assert(offsetof(struct regset, fcw) == 108, "layout");
_Static_assert(offsetof(struct regset, st0) == 112, "layout");
_Static_assert(offsetof(struct regset, st1) == 128, "layout");
_Static_assert(offsetof(struct regset, vec) == 144, "layout");

static const char *gpr_names[12] = { "rax", "rbx", "rcx", "rbp", "r8",  "r9",
				     "r10", "r11", "r12", "r13", "r14", "r15" };

static volatile int g_flag;

static void on_term_flag(int sig)
{
	(void)sig;
	g_term = 1;
	g_flag = 1;
}

#define LOAD_GPRS                                                                                  \
	"mov 0(%%rsi), %%rax\n\t"                                                                  \
	"mov 8(%%rsi), %%rbx\n\t"                                                                  \
	"mov 16(%%rsi), %%rcx\n\t"                                                                 \
	"mov 24(%%rsi), %%rbp\n\t"                                                                 \
	"mov 32(%%rsi), %%r8\n\t"                                                                  \
	"mov 40(%%rsi), %%r9\n\t"                                                                  \
	"mov 48(%%rsi), %%r10\n\t"                                                                 \
	"mov 56(%%rsi), %%r11\n\t"                                                                 \
	"mov 64(%%rsi), %%r12\n\t"                                                                 \
	"mov 72(%%rsi), %%r13\n\t"                                                                 \
	"mov 80(%%rsi), %%r14\n\t"                                                                 \
	"mov 88(%%rsi), %%r15\n\t"

#define STORE_GPRS                                                                                 \
	"mov %%rax, 0(%%rdx)\n\t"                                                                  \
	"mov %%rbx, 8(%%rdx)\n\t"                                                                  \
	"mov %%rcx, 16(%%rdx)\n\t"                                                                 \
	"mov %%rbp, 24(%%rdx)\n\t"                                                                 \
	"mov %%r8, 32(%%rdx)\n\t"                                                                  \
	"mov %%r9, 40(%%rdx)\n\t"                                                                  \
	"mov %%r10, 48(%%rdx)\n\t"                                                                 \
	"mov %%r11, 56(%%rdx)\n\t"                                                                 \
	"mov %%r12, 64(%%rdx)\n\t"                                                                 \
	"mov %%r13, 72(%%rdx)\n\t"                                                                 \
	"mov %%r14, 80(%%rdx)\n\t"                                                                 \
	"mov %%r15, 88(%%rdx)\n\t"

#define VEC16(op, a, b)                                                                            \
	op a(0) b(0) op a(1) b(1) op a(2) b(2) op a(3) b(3) op a(4) b(4) op a(5) b(5) op a(6) b(6)   \
	op a(7) b(7) op a(8) b(8) op a(9) b(9) op a(10) b(10) op a(11) b(11) op a(12) b(12)         \
	op a(13) b(13) op a(14) b(14) op a(15) b(15)

#define SRC_MEM(i) #i "*32+144(%%rsi), "
#define DST_MEM(i) #i "*32+144(%%rdx)\n\t"
#define YMM_DST(i) "%%ymm" #i "\n\t"
#define YMM_SRC(i) "%%ymm" #i ", "
#define XMM_DST(i) "%%xmm" #i "\n\t"
#define XMM_SRC(i) "%%xmm" #i ", "

/* Everything happens in one asm block so the compiler cannot touch the registers in between.
 * The red zone is skipped before rbp is pushed; memory is addressed through rsi (values in),
 * rdx (values out) and rdi (flag) only. */
#define SPIN_ASM(LOADV, STOREV)                                                                    \
	"lea -128(%%rsp), %%rsp\n\t"                                                               \
	"push %%rbp\n\t"                                                                           \
	"fldcw 108(%%rsi)\n\t"                                                                     \
	"ldmxcsr 104(%%rsi)\n\t"                                                                   \
	"fldt 128(%%rsi)\n\t"                                                                      \
	"fldt 112(%%rsi)\n\t" LOADV LOAD_GPRS "std\n\t"                                            \
	"1: pause\n\t"                                                                             \
	"cmpl $0, (%%rdi)\n\t"                                                                     \
	"je 1b\n\t"                                                                                \
	"pushf\n\t"                                                                                \
	"cld\n\t" STORE_GPRS "pop %%rax\n\t"                                                       \
	"mov %%rax, 96(%%rdx)\n\t" STOREV "stmxcsr 104(%%rdx)\n\t"                                 \
	"fnstcw 108(%%rdx)\n\t"                                                                    \
	"fstpt 112(%%rdx)\n\t"                                                                     \
	"fstpt 128(%%rdx)\n\t"                                                                     \
	"pop %%rbp\n\t"                                                                            \
	"lea 128(%%rsp), %%rsp\n\t"

#define CLOBBERS                                                                                   \
	"rax", "rbx", "rcx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "xmm0", "xmm1",   \
		"xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",    \
		"xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc"

static void spin_avx(const struct regset *in, struct regset *out)
{
	__asm__ volatile(SPIN_ASM(VEC16("vmovdqu ", SRC_MEM, YMM_DST),
				  VEC16("vmovdqu ", YMM_SRC, DST_MEM)) "vzeroupper\n\t"
			 :
			 : "D"(&g_flag), "S"(in), "d"(out)
			 : CLOBBERS);
}

static void spin_sse(const struct regset *in, struct regset *out)
{
	__asm__ volatile(SPIN_ASM(VEC16("movdqu ", SRC_MEM, XMM_DST), VEC16("movdqu ", XMM_SRC, DST_MEM))
			 :
			 : "D"(&g_flag), "S"(in), "d"(out)
			 : CLOBBERS);
}

static int have_avx(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	if (!(c & bit_AVX) || !(c & bit_OSXSAVE))
		return 0;
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (lo & 6) == 6; /* XMM and YMM state enabled by the OS */
}

static void hex(char *buf, const unsigned char *p, int n)
{
	for (int i = 0; i < n; i++)
		sprintf(buf + 2 * i, "%02x", p[n - 1 - i]);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	int avx = have_avx() && !(argc > 2 && strcmp(argv[2], "sse") == 0);
	static struct regset in, out;
	for (int i = 0; i < 12; i++)
		in.gpr[i] = 0x0123456789abcdefull ^ ((uint64_t)(i + 1) * 0x1111111111111111ull);
	in.mxcsr = 0xdf80; /* flush-to-zero, round up, all exceptions masked */
	in.fcw = 0x067f;   /* double precision, round down */
	long double v0 = -1234.5678L, v1 = 3.25e-300L;
	memcpy(in.st0, &v0, 10);
	memcpy(in.st1, &v1, 10);
	for (int r = 0; r < 16; r++)
		for (int b = 0; b < 32; b++)
			in.vec[r][b] = (unsigned char)((r * 32 + b) ^ 0x5a);
	memset(&out, 0xcc, sizeof(out));

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term_flag;
	SETUP(sigaction(SIGTERM, &sa, NULL) == 0, "sigaction");
	out_line("# vector registers: %s", avx ? "ymm0-15 (AVX)" : "xmm0-15 (SSE)");
	ready();
	if (avx)
		spin_avx(&in, &out);
	else
		spin_sse(&in, &out);

	for (int i = 0; i < 12; i++)
		CHECK(out.gpr[i] == in.gpr[i], "%s: expected %#llx got %#llx", gpr_names[i],
		      (unsigned long long)in.gpr[i], (unsigned long long)out.gpr[i]);
	CHECK(out.rflags & (1 << 10), "rflags.DF: expected set, rflags %#llx", (unsigned long long)out.rflags);
	CHECK(out.mxcsr == in.mxcsr, "mxcsr: expected %#x got %#x", in.mxcsr, out.mxcsr);
	CHECK(out.fcw == in.fcw, "x87 control word: expected %#x got %#x", in.fcw, out.fcw);
	char e[80], g[80];
	if (memcmp(out.st0, in.st0, 10) != 0) {
		hex(e, in.st0, 10), hex(g, out.st0, 10);
		failf("st(0): expected %s got %s", e, g);
	}
	if (memcmp(out.st1, in.st1, 10) != 0) {
		hex(e, in.st1, 10), hex(g, out.st1, 10);
		failf("st(1): expected %s got %s", e, g);
	}
	int vlen = avx ? 32 : 16;
	for (int r = 0; r < 16; r++)
		if (memcmp(out.vec[r], in.vec[r], vlen) != 0) {
			hex(e, in.vec[r], vlen), hex(g, out.vec[r], vlen);
			failf("%s%d: expected %s got %s", avx ? "ymm" : "xmm", r, e, g);
		}
	return finish();
}
