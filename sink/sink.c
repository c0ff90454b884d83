/*
 * sink.c — what all sinks share: destruction through the ops table.
 */
#include "sink/sink.h"

void sink_destroy(Sink *s)
{
    if (s) s->ops->destroy(s);
}
