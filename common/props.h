/*
 * props.h — a small list of name=value properties (librdkafka settings from
 * the [kafka] section, the Kafka sink's copy of them). The list owns every
 * string in it; one name appears at most once, a later value replacing the
 * earlier one. No I/O.
 */
#ifndef WALREV_COMMON_PROPS_H
#define WALREV_COMMON_PROPS_H

typedef struct {
    char *name;  /* owned by the list */
    char *value; /* owned by the list */
} WrProp;

/* Set name to value in *props (n entries): replace the value of an entry of
 * that name, or append a new one (*props grows, *n counts it). Copies both
 * strings; aborts on out-of-memory. */
void props_set(WrProp **props, int *n, const char *name, const char *value);

/* Free the n entries' strings and the array itself; props may be NULL. */
void props_free(WrProp *props, int n);

#endif
