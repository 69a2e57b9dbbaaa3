#include "progress.h"

#include <stdio.h>

void progress_duration(double s, char *out, size_t size) {
    long t = s < 0 ? 0 : (long)(s + 0.5);
    if (t < 60) snprintf(out, size, "%lds", t);
    else if (t < 3600) snprintf(out, size, "%ldm%02lds", t / 60, t % 60);
    else snprintf(out, size, "%ldh%02ldm", t / 3600, t / 60 % 60);
}

void progress_format(const struct progress_info *p, int bar_width, char *out, size_t size) {
    size_t n = 0;
#define PUT(...)                                                                  \
    do {                                                                          \
        if (n < size) {                                                           \
            int k_ = snprintf(out + n, size - n, __VA_ARGS__);                    \
            n = k_ < 0 ? size : n + (size_t)k_;                                   \
        }                                                                         \
    } while (0)
    double frac = p->steps > 0 ? (double)p->step / (double)p->steps : 1.0;
    if (frac > 1) frac = 1;
    PUT("step %ld/%ld", p->step, p->steps);
    if (bar_width > 0) {
        int fill = (int)(frac * bar_width + 0.5);
        PUT(" [");
        for (int i = 0; i < bar_width; i++) PUT("%c", i < fill ? '#' : '.');
        PUT("]");
    }
    PUT(" %3d%%  v%ld", (int)(frac * 100 + 0.5), p->policy_version);
    if (p->has_und) PUT("  R_U %.4f", p->und);
    if (p->has_gen) PUT("  R_G %.4f", p->gen);
    if (p->has_loss) PUT("  loss %.4g", p->loss);
    PUT("  %.2fs/step", p->step_seconds);
    if (p->done_this_run > 0 && p->step < p->steps) {
        char eta[32];
        progress_duration(p->run_seconds / (double)p->done_this_run * (double)(p->steps - p->step), eta, sizeof eta);
        PUT("  ETA %s", eta);
    } else if (p->step >= p->steps) {
        char took[32];
        progress_duration(p->run_seconds, took, sizeof took);
        PUT("  done in %s", took);
    }
#undef PUT
}
