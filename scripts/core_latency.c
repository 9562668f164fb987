/* Core-to-core round trip: two threads pinned to the first two CPUs this process may use
 * bounce one cache line; prints the median round trip in nanoseconds over 7 runs.
 *
 * On the 2-core CI VM this tells the benchmark which placement the hypervisor gave its two
 * vCPUs: 70-125 ns when they share a last-level cache, ~400 ns when they do not, and then
 * every kernel that reads what the other thread wrote runs slower (BENCHMARKS.md).
 *
 *     cc -O2 -pthread scripts/core_latency.c -o core_latency && ./core_latency
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TRIPS 50000
#define RUNS 7

static _Atomic int flag __attribute__((aligned(64)));
static int cpus[2];

static int pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *echo(void *arg) {
    (void)arg;
    if (pin(cpus[1]) != 0) return NULL;
    for (int r = 0; r < RUNS * TRIPS; r++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 1) {}
        atomic_store_explicit(&flag, 0, memory_order_release);
    }
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 1;
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &allowed)) cpus[n++] = c;
    if (n < 2) {
        fprintf(stderr, "core_latency: fewer than two CPUs available\n");
        return 1;
    }
    pthread_t t;
    if (pin(cpus[0]) != 0 || pthread_create(&t, NULL, echo, NULL) != 0) return 1;
    double ns[RUNS];
    for (int r = 0; r < RUNS; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < TRIPS; i++) {
            atomic_store_explicit(&flag, 1, memory_order_release);
            while (atomic_load_explicit(&flag, memory_order_acquire) != 0) {}
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        ns[r] = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / TRIPS;
    }
    pthread_join(t, NULL);
    qsort(ns, RUNS, sizeof ns[0], cmp);
    printf("%.0f\n", ns[RUNS / 2]);
    return 0;
}
