/* Task plumbing shared by every kind. */
#include "vantage/task.h"

void vt_task_done(vt_task *t)
{
    if (t->finished)
        return;
    t->finished = 1;
    if (t->on_done)
        t->on_done(t, t->on_done_arg);
}

double vt_task_elapsed(const vt_task *t)
{
    return vt_now() - t->t0;
}
