/* The one monotonic clock lib's deadlines and timers read (util.h). */
#include <time.h>

#include "util.h"

int64_t
util_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
