/* mixpath's CPU kernels are one translation unit: this file, depthwise.c for 8-channel and then for 16-channel
   blocks, and batch_norm.c, concatenated in that order (mixpath/kernels/build.py). */

#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* this thread's number in its team and the team's size (0 and 1 without OpenMP) */
static inline void team(int* t, int* nt) {
#ifdef _OPENMP
  *t = omp_get_thread_num();
  *nt = omp_get_num_threads();
#else
  *t = 0;
  *nt = 1;
#endif
}
