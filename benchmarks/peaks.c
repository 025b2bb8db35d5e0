/* The machine's arithmetic peaks: how many multiply-adds one core (and every core) retires
 * per second with the instructions lstm_native's kernels are built on.
 *
 * Each test is a loop of 12 independent chains of one instruction on 512-bit (zmm) or
 * 256-bit (ymm) registers: float32 and float64 FMA (vfmadd231ps/pd), int8 dot products
 * (vpdpbusd: u8 x s8, four products summed into each int32 lane), bfloat16 dot products
 * (vdpbf16ps: two products summed into each float32 lane), and AVX2's vpmaddwd (two 16-bit
 * products summed into each int32 lane: the int8 kernel's instruction on CPUs without
 * VNNI). Twelve chains are more than the latency x throughput of any of these on current
 * x86 cores (4 x 2), so the loop is bound by throughput, not by one chain's latency. The
 * chains start from different values and the sum of all of them is printed, so that the
 * compiler can neither merge nor drop them (no -ffast-math: it may not reassociate the
 * float chains either); check the loops with `objdump -d peaks | grep -c vdpbf16ps` and
 * the like.
 *
 * A multiply-add counts as two operations: an FMA lane 2, a vpdpbusd lane 8 (four u8 x s8
 * products and their sum), a vdpbf16ps lane 4, a vpmaddwd lane 4. The clock is measured
 * with a chain of dependent integer adds (one a cycle on every x86 core since the P6), so
 * the report gives the instructions retired per cycle too. Rates are per thread CPU time
 * (summed over the threads), so that another process taking turns on a core does not lower
 * them; the last column, over wall time, shows whether it did (the two agree on an idle
 * machine).
 *
 * Build and run (benchmarks/peaks.sh does both, pinned to 1 and 2 cores):
 *     gcc -O2 -fopenmp -o /tmp/peaks benchmarks/peaks.c
 *     OMP_NUM_THREADS=1 taskset -c 1 /tmp/peaks
 *     OMP_NUM_THREADS=2 OMP_PROC_BIND=true taskset -c 0,1 /tmp/peaks
 */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS 12

/* Each test is compiled for its own instructions only, and the rest for the baseline, so
 * that the program runs on any x86-64 and skips what the CPU lacks (built with -mavx512f
 * for the whole file, GCC put EVEX instructions into the ymm tests too). */
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512                                                                     \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni,avx512bf16,avx2,fma")))

static double seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* One test: `iters` rounds of CHAINS instructions; returns a value that depends on every
 * chain's result. The operands come from `seed` (read at run time), so nothing folds. */
typedef double (*test_fn)(long iters, float seed);

/* acc_j = OP(acc_j, a, b) for j < CHAINS, iters times; the chains are unrolled by hand so
 * that each lives in its own register. */
#define CHAIN_LOOP(OP)                                                                    \
    for (long i = 0; i < iters; ++i) {                                                    \
        c0 = OP(c0); c1 = OP(c1); c2 = OP(c2); c3 = OP(c3);                               \
        c4 = OP(c4); c5 = OP(c5); c6 = OP(c6); c7 = OP(c7);                               \
        c8 = OP(c8); c9 = OP(c9); c10 = OP(c10); c11 = OP(c11);                           \
    }

#define DECLARE_CHAINS(TYPE, INIT)                                                        \
    TYPE c0 = INIT(1), c1 = INIT(2), c2 = INIT(3), c3 = INIT(4), c4 = INIT(5),            \
         c5 = INIT(6), c6 = INIT(7), c7 = INIT(8), c8 = INIT(9), c9 = INIT(10),           \
         c10 = INIT(11), c11 = INIT(12)

/* The chains' sum as one double (the test's "result used"). */
#define SUM_CHAINS(REDUCE)                                                                \
    (REDUCE(c0) + REDUCE(c1) + REDUCE(c2) + REDUCE(c3) + REDUCE(c4) + REDUCE(c5) +        \
     REDUCE(c6) + REDUCE(c7) + REDUCE(c8) + REDUCE(c9) + REDUCE(c10) + REDUCE(c11))

TARGET_AVX512 static double fma_ps_zmm(long iters, float seed) {
    /* a * b is tiny, so the chains grow slowly and stay normal numbers. */
    const __m512 a = _mm512_set1_ps(seed), b = _mm512_set1_ps(1e-9f);
#define INIT(k) _mm512_set1_ps(seed * (k))
#define OP(c) _mm512_fmadd_ps(a, b, c)
    DECLARE_CHAINS(__m512, INIT);
    CHAIN_LOOP(OP);
#undef INIT
#undef OP
    return SUM_CHAINS(_mm512_reduce_add_ps);
}

TARGET_AVX2 static inline float reduce_ymm_ps(__m256 v) {
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    float s = 0.0f;
    for (int i = 0; i < 8; ++i) s += lanes[i];
    return s;
}

TARGET_AVX2 static double fma_ps_ymm(long iters, float seed) {
    const __m256 a = _mm256_set1_ps(seed), b = _mm256_set1_ps(1e-9f);
#define INIT(k) _mm256_set1_ps(seed * (k))
#define OP(c) _mm256_fmadd_ps(a, b, c)
    DECLARE_CHAINS(__m256, INIT);
    CHAIN_LOOP(OP);
#undef INIT
#undef OP
    return SUM_CHAINS(reduce_ymm_ps);
}

TARGET_AVX512 static double fma_pd_zmm(long iters, float seed) {
    const __m512d a = _mm512_set1_pd(seed), b = _mm512_set1_pd(1e-12);
#define INIT(k) _mm512_set1_pd((double)seed * (k))
#define OP(c) _mm512_fmadd_pd(a, b, c)
    DECLARE_CHAINS(__m512d, INIT);
    CHAIN_LOOP(OP);
#undef INIT
#undef OP
    return SUM_CHAINS(_mm512_reduce_add_pd);
}

TARGET_AVX512 static double vnni_zmm(long iters, float seed) {
    /* u8 = 1 + seed, s8 = 1: each round adds 4 to every lane (int32 wraps, harmlessly). */
    const __m512i a = _mm512_set1_epi8((char)(1 + (int)seed)), b = _mm512_set1_epi8(1);
#define INIT(k) _mm512_set1_epi32((int)(seed * (k)))
#define OP(c) _mm512_dpbusd_epi32(c, a, b)
    DECLARE_CHAINS(__m512i, INIT);
    CHAIN_LOOP(OP);
#undef INIT
#undef OP
    return SUM_CHAINS((double)_mm512_reduce_add_epi32);
}

TARGET_AVX2 static inline int reduce_ymm_epi32(__m256i v) {
    int lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, v);
    int s = 0;
    for (int i = 0; i < 8; ++i) s += lanes[i];
    return s;
}

TARGET_AVX512 static double vnni_ymm(long iters, float seed) {
    const __m256i a = _mm256_set1_epi8((char)(1 + (int)seed)), b = _mm256_set1_epi8(1);
#define INIT(k) _mm256_set1_epi32((int)(seed * (k)))
#define OP(c) _mm256_dpbusd_epi32(c, a, b)
    DECLARE_CHAINS(__m256i, INIT);
    CHAIN_LOOP(OP);
#undef INIT
#undef OP
    return SUM_CHAINS((double)reduce_ymm_epi32);
}

/* AVX2's int8 without VNNI: the kernel's vpmaddwd, two 16-bit products summed into each
 * int32 lane (src/quant_gemm.c splits each vpdpbusd into two of them). The chain feeds
 * each result back as the next 16-bit pairs (times 1: the lanes keep their values). */
TARGET_AVX2 static double maddwd_ymm(long iters, float seed) {
    const __m256i b = _mm256_set1_epi16(1);
#define INIT(k) _mm256_set1_epi32((int)(seed * (k)))
#define OP(c) _mm256_madd_epi16(c, b)
    DECLARE_CHAINS(__m256i, INIT);
    CHAIN_LOOP(OP);
#undef INIT
#undef OP
    return SUM_CHAINS((double)reduce_ymm_epi32);
}

TARGET_AVX512 static double bf16_zmm(long iters, float seed) {
    const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(seed), _mm512_set1_ps(seed));
    const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-9f), _mm512_set1_ps(1e-9f));
#define INIT(k) _mm512_set1_ps(seed * (k))
#define OP(c) _mm512_dpbf16_ps(c, a, b)
    DECLARE_CHAINS(__m512, INIT);
    CHAIN_LOOP(OP);
#undef INIT
#undef OP
    return SUM_CHAINS(_mm512_reduce_add_ps);
}

/* The core clock: a chain of dependent integer adds retires one a cycle. */
static double add_chain(long iters, float seed) {
    uint64_t x = (uint64_t)seed;
    for (long i = 0; i < iters; ++i) {
        __asm__ volatile(
            "add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\t"
            "add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\t"
            "add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\t"
            : "+r"(x));
    }
    return (double)x;
}

struct test {
    const char *name;
    test_fn fn;
    double ops_per_instruction; /* a multiply-add counted as two */
    const char *isa;            /* __builtin_cpu_supports name, or NULL */
};

static const struct test TESTS[] = {
    {"clock (dependent add)", add_chain, 0.0, NULL},
    {"float32 FMA zmm", fma_ps_zmm, 32.0, "avx512f"},
    {"float32 FMA ymm", fma_ps_ymm, 16.0, "fma"},
    {"float64 FMA zmm", fma_pd_zmm, 16.0, "avx512f"},
    {"int8 vpdpbusd zmm", vnni_zmm, 128.0, "avx512vnni"},
    {"int8 vpdpbusd ymm", vnni_ymm, 64.0, "avx512vnni"},
    {"int16 vpmaddwd ymm", maddwd_ymm, 32.0, "avx2"},
    {"bf16 vdpbf16ps zmm", bf16_zmm, 64.0, "avx512bf16"},
};

/* __builtin_cpu_supports takes only a literal. */
static int supported(const char *isa) {
    if (isa == NULL) return 1;
    if (strcmp(isa, "fma") == 0) return __builtin_cpu_supports("fma");
    if (strcmp(isa, "avx2") == 0) return __builtin_cpu_supports("avx2");
    if (strcmp(isa, "avx512f") == 0) return __builtin_cpu_supports("avx512f");
    if (strcmp(isa, "avx512vnni") == 0) return __builtin_cpu_supports("avx512vnni");
    if (strcmp(isa, "avx512bf16") == 0) return __builtin_cpu_supports("avx512bf16");
    return 0;
}

static int compare(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Instructions per second of one test, the median of `repeats` runs: summed over the
 * threads, each thread's count over its own CPU time (what a core retires while it runs the
 * test, even if another process takes turns on it), and all of them over the wall time (which
 * a busy machine lowers). */
struct rates {
    double cpu, wall;
};

static struct rates rate(const struct test *t, long iters, int repeats, double *sink) {
    double cpu[64], wall[64];
    for (int r = 0; r < repeats; ++r) {
        double start = 0.0, stop = 0.0, total = 0.0, per_second = 0.0;
#pragma omp parallel reduction(+ : total, per_second)
        {
            float seed = 1.0f + 0.001f * (float)omp_get_thread_num() + (float)(*sink == 1e300);
#pragma omp barrier
#pragma omp master
            start = seconds(CLOCK_MONOTONIC);
            double own = seconds(CLOCK_THREAD_CPUTIME_ID);
            total += t->fn(iters, seed);
            per_second += (double)iters * CHAINS / (seconds(CLOCK_THREAD_CPUTIME_ID) - own);
#pragma omp barrier
#pragma omp master
            stop = seconds(CLOCK_MONOTONIC);
        }
        *sink += total;
        cpu[r] = per_second;
        wall[r] = (double)iters * CHAINS * omp_get_max_threads() / (stop - start);
    }
    qsort(cpu, repeats, sizeof cpu[0], compare);
    qsort(wall, repeats, sizeof wall[0], compare);
    return (struct rates){cpu[repeats / 2], wall[repeats / 2]};
}

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 50000000L;
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    if (iters <= 0 || repeats <= 0 || repeats > 64) {
        fprintf(stderr, "usage: %s [rounds > 0 (50000000)] [runs 1-64 (5)]\n", argv[0]);
        return 2;
    }
    int threads = omp_get_max_threads();
    double sink = 0.0;
    /* Warm up: let the clock and the vector units reach their steady state, on the first
     * test the CPU has (the widest FMA; running TESTS[1] whatever the CPU stopped an AVX2
     * one on an illegal instruction). */
    for (size_t k = 1; k < sizeof TESTS / sizeof TESTS[0]; ++k)
        if (supported(TESTS[k].isa)) {
            rate(&TESTS[k], iters / 4, 1, &sink);
            break;
        }
    double ghz = rate(&TESTS[0], iters, repeats, &sink).cpu / threads / 1e9;

    printf("threads: %d, %ld rounds x %d chains, median of %d runs\n", threads, iters, CHAINS,
           repeats);
    printf("| test | G instr/s | instr / cycle / core | GOP/s (GF/s) | GOP/s per core |"
           " GOP/s by wall time |\n");
    printf("|---|--:|--:|--:|--:|--:|\n");
    printf("| clock | %.2f GHz a core | 1 add | | | |\n", ghz);
    for (size_t k = 1; k < sizeof TESTS / sizeof TESTS[0]; ++k) {
        const struct test *t = &TESTS[k];
        if (!supported(t->isa)) {
            printf("| %s | not supported | | | | |\n", t->name);
            continue;
        }
        struct rates r = rate(t, iters, repeats, &sink);
        printf("| %s | %.2f | %.2f | %.1f | %.1f | %.1f |\n", t->name, r.cpu / 1e9,
               r.cpu / threads / (ghz * 1e9), r.cpu * t->ops_per_instruction / 1e9,
               r.cpu * t->ops_per_instruction / 1e9 / threads,
               r.wall * t->ops_per_instruction / 1e9);
    }
    printf("(checksum %g)\n", sink);
    return 0;
}
