/*
 * The display parent (parent.c) for umdevd, and its exercise() hook
 * (display_exercise.c), which the conformance kit links on its own.
 */
#ifndef UMDEV_DISPLAY_PARENT_H
#define UMDEV_DISPLAY_PARENT_H

#include "umdev/parent.h"

extern const struct umdev_parent display_parent;

/**
 * display_exercise() - the conformance kit's load for display types
 * (include/umdev/parent.h): bring a mode up as bochs-drm does (its
 * largest, learnt through GETCAPS), draw @args->units pages of video
 * memory through the client's mapping of BAR0, and read every one back
 * through the device. Unit: a 4 KiB page of pixels. Messages of the
 * bring-up and of the read-back are reported as waiting; those while
 * drawing are not (there should be none).
 */
int display_exercise(const struct umdev_exercise_args *args,
                     struct umdev_exercise_result *out);

#endif /* UMDEV_DISPLAY_PARENT_H */
