/* dsr-train's progress line: step, a bar, rewards, loss and the time left.
 * Pure formatting (no I/O), so tests can check it. */
#ifndef DSR_TRAIN_PROGRESS_H
#define DSR_TRAIN_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>

struct progress_info {
    long step, steps, policy_version;
    long done_this_run;  /* steps finished since this process started (ETA basis; resume-aware) */
    double run_seconds;  /* wall time since this process started */
    double step_seconds; /* the last step */
    bool has_und, has_gen, has_loss;
    double und, gen, loss;
};

/* "12s", "3m04s", "2h05m" */
void progress_duration(double seconds, char *out, size_t size);

/* "step 3/10 [######..............]  30%  v3  R_U -4.1234  R_G -5.4321
 * loss -1.234e-05  2.10s/step  ETA 14s"; the bar is bar_width wide (0 = no
 * bar).  Loss is printed with 4 significant digits, so a small loss is not
 * shown as 0.00000. */
void progress_format(const struct progress_info *p, int bar_width, char *out, size_t size);

#endif
