/*
 * tracking.h — what walrev records (docs/tracking.md): excluded tables,
 * untracked columns (changes ignored), hidden columns (that they changed is
 * recorded, never their values), and whether a context may suppress tracking.
 * Patterns are "schema.table" or "schema.table.column"; '*' matches any run
 * of characters within one part.
 */
#ifndef WALREV_SCHEMA_TRACKING_H
#define WALREV_SCHEMA_TRACKING_H

#include "schema/revision.h"

typedef struct TrackingRules TrackingRules;

typedef enum { RULE_EXCLUDE, RULE_UNTRACKED, RULE_HIDDEN } RuleKind;

TrackingRules *tracking_create(void);
void tracking_destroy(TrackingRules *r);
/* Add a comma-separated list of patterns. WR_INVALID names the bad pattern. */
WrStatus tracking_add(TrackingRules *r, RuleKind kind, const char *patterns, WrError *err) WR_MUSTCHECK;
void tracking_set_allow_suppress(TrackingRules *r, bool allow);
bool tracking_allow_suppress(const TrackingRules *r);
bool tracking_table_excluded(const TrackingRules *r, const char *nsp, const char *rel);
/* Exclude walrev's private table nsp.rel (the context key on the source:
 * a FOR ALL TABLES publication carries it) without listing it as a rule. */
void tracking_set_private_table(TrackingRules *r, const char *nsp, const char *rel);
TrackMode tracking_column_mode(const TrackingRules *r, const char *nsp, const char *rel, const char *col);
/* Human-readable listing of the rules (walrev rules). */
void tracking_describe(const TrackingRules *r, StrBuf *out);

#endif
