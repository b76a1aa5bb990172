/* parse.c: the tile language parser (docs/language.md), hand-written
 * recursive descent.
 *
 * Sections:
 *   1. Tokens and the lexer
 *   2. Errors: "file:line:col: error: message", the source line, a caret
 *   3. Symbol tables: parameters, sizes, tunables, tiles, values (loop scopes)
 *   4. Small parsing helpers (numbers, names, dims, tensor accesses)
 *   5. Expressions: operands, literals, infix sugar, the operations
 *   6. Statements: sizes, tunable, grid, for/yield, store, assignment
 *   7. The kernel and ts_kernel_parse
 *
 * The parser never writes IR itself: every construct lowers to the public
 * builder calls, so the C API and the language share one validator and one
 * set of messages. When a builder call fails, its message (without the
 * "kernel 'k', op N: " prefix, which the source position replaces) is
 * reported at the construct that made the call, with the builder's status.
 * Errors found by the parser itself return TS_ERR_PARSE.
 *
 * The parser tracks the dtype and rank of each value it made (mirroring the
 * builder's typing rules) for two bits of sugar only: a number next to a tile
 * value becomes a rank-0 full() of that value's dtype, and a negative axis
 * counts from the end. The builder still checks everything.
 *
 * Robustness: the lexer bounds nothing but memory (tokens are one array);
 * expression nesting is bounded (MAX_EXPR_DEPTH) and loop nesting by the
 * builder (32), so recursion depth is bounded; every allocation is freed on
 * every path.
 */
#include "ir.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EXPR_DEPTH 64
#define MAX_LOOP_DEPTH 64
#define MAX_LIST 64 /* carried values, names on the left of '=', dims, indices */

/* ---------------------------------------------------------------- 1. tokens and the lexer */

typedef enum tok_kind { T_EOF, T_NL, T_IDENT, T_INT, T_FLOAT, T_PUNCT } tok_kind;

typedef enum punct {
    P_LPAREN, P_RPAREN, P_LBRACK, P_RBRACK, P_LBRACE, P_RBRACE, P_COMMA, P_ASSIGN, P_COLON, P_DOT, P_DOTDOT,
    P_PLUS, P_MINUS, P_STAR, P_SLASH, P_LT, P_LE, P_GT, P_GE, P_EQ, P_NE, P_AND, P_OR, P_PERCENT, P_NONE
} punct;

static const char *const punct_text[] = {"(", ")", "[", "]", "{", "}", ",", "=", ":", ".", "..",
                                         "+", "-", "*", "/", "<", "<=", ">", ">=", "==", "!=", "&&", "||", "%", "?"};

typedef struct token {
    tok_kind kind;
    punct op;
    const char *s; /* into the source text */
    int len;
    int line, col; /* 1-based; col counts bytes */
} token;

typedef struct pvalue {
    char name[TS__MAX_NAME];
    ts_val v;
    ts_dtype dtype;
    int rank;
    int depth; /* loop nesting depth where it was bound */
    int dead;  /* its loop has closed */
} pvalue;

typedef struct ptile {
    char name[TS__MAX_NAME];
    ts_tile t;
} ptile;

typedef struct pparam {
    char name[TS__MAX_NAME];
    int is_tensor;
    ts_dtype dtype;
    int rank;
    int name_tok;
    int size_tok[8];
} pparam;

typedef struct pname {
    char name[TS__MAX_NAME];
} pname;

typedef struct parser {
    const char *src, *file;
    token *toks;
    int ntoks, caps_toks, pos;
    ts_builder *b;
    ts_status status; /* sticky: first error wins */
    pparam *params;
    int nparams, caps_params, params_built;
    pname *sizes;
    int nsizes, caps_sizes;
    pname *tunables;
    int ntunables, caps_tunables;
    ptile *tiles;
    int ntiles, caps_tiles;
    pvalue *values;
    int nvalues, caps_values;
    int depth;      /* loop nesting */
    int expr_depth; /* expression nesting */
    int kernel_tok;
} parser;

static int grow(parser *p, void **arr, int *caps, int n, size_t elem);
static void perr(parser *p, int tok, const char *fmt, ...) TS__PRINTF(3, 4);

static void push_tok(parser *p, tok_kind kind, punct op, const char *s, int len, int line, int col) {
    if (p->status) return;
    if (grow(p, (void **)&p->toks, &p->caps_toks, p->ntoks, sizeof *p->toks)) return;
    p->toks[p->ntoks++] = (token){kind, op, s, len, line, col};
}

/* Newlines end statements except inside () and [], so long calls may wrap. */
static void lex(parser *p) {
    const char *s = p->src, *line_start = s;
    int line = 1, nest = 0;
    while (!p->status) {
        char c = *s;
        int col = (int)(s - line_start) + 1;
        if (c == 0) break;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') { s++; continue; }
        if (c == '#') {
            while (*s && *s != '\n') s++;
            continue;
        }
        if (c == '\n') {
            if (nest == 0) push_tok(p, T_NL, P_NONE, s, 1, line, col);
            s++;
            line++;
            line_start = s;
            continue;
        }
        if (isalpha((unsigned char)c) || c == '_') {
            const char *b = s;
            while (isalnum((unsigned char)*s) || *s == '_') s++;
            push_tok(p, T_IDENT, P_NONE, b, (int)(s - b), line, col);
            continue;
        }
        if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)s[1]))) {
            const char *b = s;
            int is_float = 0;
            while (isdigit((unsigned char)*s)) s++;
            if (*s == '.' && isdigit((unsigned char)s[1])) { /* "16..128" stays INT DOTDOT INT */
                is_float = 1;
                s++;
                while (isdigit((unsigned char)*s)) s++;
            }
            if ((*s == 'e' || *s == 'E') && (isdigit((unsigned char)s[1]) || ((s[1] == '+' || s[1] == '-') && isdigit((unsigned char)s[2])))) {
                is_float = 1;
                s += 2;
                while (isdigit((unsigned char)*s)) s++;
            }
            if (isalpha((unsigned char)*s) || *s == '_') {
                push_tok(p, T_INT, P_NONE, b, (int)(s - b), line, col);
                p->pos = p->ntoks - 1;
                perr(p, p->pos, "malformed number: a letter follows '%.*s'", (int)(s - b) > 32 ? 32 : (int)(s - b), b);
                return;
            }
            push_tok(p, is_float ? T_FLOAT : T_INT, P_NONE, b, (int)(s - b), line, col);
            continue;
        }
        punct op = P_NONE;
        int len = 1;
        switch (c) {
        case '(': op = P_LPAREN; nest++; break;
        case ')': op = P_RPAREN; if (nest > 0) nest--; break;
        case '[': op = P_LBRACK; nest++; break;
        case ']': op = P_RBRACK; if (nest > 0) nest--; break;
        case '{': op = P_LBRACE; nest = 0; break; /* a block always restarts line structure */
        case '}': op = P_RBRACE; nest = 0; break;
        case ',': op = P_COMMA; break;
        case ':': op = P_COLON; break;
        case '+': op = P_PLUS; break;
        case '-': op = P_MINUS; break;
        case '*': op = P_STAR; break;
        case '/': op = P_SLASH; break;
        case '%': op = P_PERCENT; break;
        case '.': op = s[1] == '.' ? P_DOTDOT : P_DOT; len = op == P_DOTDOT ? 2 : 1; break;
        case '=': op = s[1] == '=' ? P_EQ : P_ASSIGN; len = op == P_EQ ? 2 : 1; break;
        case '<': op = s[1] == '=' ? P_LE : P_LT; len = op == P_LE ? 2 : 1; break;
        case '>': op = s[1] == '=' ? P_GE : P_GT; len = op == P_GE ? 2 : 1; break;
        case '!': if (s[1] == '=') { op = P_NE; len = 2; } break;
        case '&': if (s[1] == '&') { op = P_AND; len = 2; } break;
        case '|': if (s[1] == '|') { op = P_OR; len = 2; } break;
        default: break;
        }
        if (op == P_NONE) {
            push_tok(p, T_PUNCT, P_NONE, s, 1, line, col);
            p->pos = p->ntoks - 1;
            if (c == '!') perr(p, p->pos, "unexpected character '!' (use not(x) for logical not, != for inequality)");
            else if (c == '&' || c == '|') perr(p, p->pos, "unexpected character '%c' (use %c%c)", c, c, c);
            else if (isprint((unsigned char)c)) perr(p, p->pos, "unexpected character '%c'", c);
            else perr(p, p->pos, "unexpected byte 0x%02x", (unsigned)(unsigned char)c);
            return;
        }
        push_tok(p, T_PUNCT, op, s, len, line, (int)(s - line_start) + 1);
        s += len;
    }
    push_tok(p, T_NL, P_NONE, s, 0, line, (int)(s - line_start) + 1);
    push_tok(p, T_EOF, P_NONE, s, 0, line, (int)(s - line_start) + 1);
}

/* ---------------------------------------------------------------- 2. errors */

static void put_source_line(ts__sb *sb, const char *src, int line, int col) {
    const char *ls = src;
    for (int l = 1; l < line && *ls; ls++)
        if (*ls == '\n') l++;
    const char *le = ls;
    while (*le && *le != '\n') le++;
    int n = (int)(le - ls), start = 0, caret = col - 1;
    if (caret > n) caret = n;
    if (caret > 200) start = caret - 100; /* long lines: a window around the column */
    int end = n - start > 400 ? start + 400 : n;
    ts__sb_puts(sb, "\n");
    for (int i = start; i < end; i++) {
        unsigned char ch = (unsigned char)ls[i];
        char cs[2] = {(char)(ch == '\t' || ch >= 0x20 ? (ch == 0x7f ? '?' : ch) : '?'), 0};
        ts__sb_puts(sb, cs);
    }
    ts__sb_puts(sb, "\n");
    for (int i = start; i < caret; i++) ts__sb_puts(sb, ls[i] == '\t' ? "\t" : " ");
    ts__sb_puts(sb, "^");
}

/* Sets the error (the first one only) with the position of token `tok`. */
static void perr_status(parser *p, int tok, ts_status s, const char *fmt, va_list ap) {
    if (p->status) return;
    p->status = s;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    const token *t = tok >= 0 && tok < p->ntoks ? &p->toks[tok] : NULL;
    int line = t ? t->line : 1, col = t ? t->col : 1;
    ts__sb sb = {0};
    ts__sb_printf(&sb, "%s:%d:%d: error: %s", p->file, line, col, msg);
    put_source_line(&sb, p->src, line, col);
    char *text = ts__sb_finish(&sb);
    if (text) {
        ts__error(s, "%s", text);
        free(text);
    } else {
        ts__error(s, "%s:%d:%d: error: %s", p->file, line, col, msg);
    }
}

static void perr(parser *p, int tok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    perr_status(p, tok, TS_ERR_PARSE, fmt, ap);
    va_end(ap);
}

static void perr_s(parser *p, int tok, ts_status s, const char *fmt, ...) TS__PRINTF(4, 5);
static void perr_s(parser *p, int tok, ts_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    perr_status(p, tok, s, fmt, ap);
    va_end(ap);
}

/* A builder call failed: report its message and status at `tok`. Returns -1. */
static int bfail(parser *p, int tok) {
    if (p->status) return -1;
    ts_kernel *k = NULL;
    ts_status s = ts_builder_finish(p->b, &k); /* sticky: returns the first error and its message */
    ts_kernel_destroy(k);
    if (s == TS_OK) s = TS_ERR_INVALID_KERNEL;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", ts_last_error());
    const char *m = msg;
    if (strncmp(m, "kernel '", 8) == 0) { /* drop "kernel 'k', op N: " and "kernel 'k': " */
        const char *q = strchr(m + 8, '\'');
        if (q && strncmp(q, "', op ", 6) == 0) {
            const char *r = q + 6;
            while (isdigit((unsigned char)*r)) r++;
            if (r[0] == ':' && r[1] == ' ') m = r + 2;
        } else if (q && strncmp(q, "': ", 3) == 0) {
            m = q + 3;
        }
    }
    perr_s(p, tok, s, "%s", m);
    return -1;
}

static int grow(parser *p, void **arr, int *caps, int n, size_t elem) {
    if (n < *caps) return 0;
    int nc = *caps ? *caps * 2 : 16;
    void *q = ts__realloc_array(*arr, (size_t)nc, elem);
    if (!q) {
        if (!p->status) {
            p->status = TS_ERR_OUT_OF_MEMORY;
            ts__error(TS_ERR_OUT_OF_MEMORY, "%s: out of memory while parsing", p->file);
        }
        return -1;
    }
    *arr = q;
    *caps = nc;
    return 0;
}

/* ---------------------------------------------------------------- token helpers */

static const token *tk(const parser *p, int i) {
    if (i >= p->ntoks) i = p->ntoks - 1;
    return &p->toks[i];
}
static const token *cur(const parser *p) { return tk(p, p->pos); }
static void advance(parser *p) {
    if (p->pos < p->ntoks - 1) p->pos++;
}
static int is_p(const parser *p, int i, punct op) { return tk(p, i)->kind == T_PUNCT && tk(p, i)->op == op; }
static int at_p(const parser *p, punct op) { return is_p(p, p->pos, op); }
static int is_word(const parser *p, int i, const char *w) {
    const token *t = tk(p, i);
    return t->kind == T_IDENT && (size_t)t->len == strlen(w) && memcmp(t->s, w, (size_t)t->len) == 0;
}
static int at_word(const parser *p, const char *w) { return is_word(p, p->pos, w); }
static int accept_p(parser *p, punct op) {
    if (!at_p(p, op)) return 0;
    advance(p);
    return 1;
}

/* "'foo'", "end of line", ... for messages. */
static const char *describe(const parser *p, int i, char *buf, size_t n) {
    const token *t = tk(p, i);
    if (t->kind == T_EOF) snprintf(buf, n, "end of file");
    else if (t->kind == T_NL) snprintf(buf, n, t->len ? "end of line" : "end of file");
    else snprintf(buf, n, "'%.*s%s'", t->len > 32 ? 32 : t->len, t->s, t->len > 32 ? "..." : "");
    return buf;
}

static int expect_p(parser *p, punct op, const char *where) {
    if (p->status) return -1;
    if (accept_p(p, op)) return 0;
    char d[64];
    perr(p, p->pos, "expected '%s' %s, found %s", punct_text[op], where, describe(p, p->pos, d, sizeof d));
    return -1;
}

static int expect_word(parser *p, const char *w, const char *where) {
    if (p->status) return -1;
    if (at_word(p, w)) {
        advance(p);
        return 0;
    }
    char d[64];
    perr(p, p->pos, "expected '%s' %s, found %s", w, where, describe(p, p->pos, d, sizeof d));
    return -1;
}

/* Copies identifier token i into buf (TS__MAX_NAME). */
static int tok_name(parser *p, int i, char *buf) {
    const token *t = tk(p, i);
    if (t->kind != T_IDENT) {
        char d[64];
        perr(p, i, "expected a name, found %s", describe(p, i, d, sizeof d));
        return -1;
    }
    if (t->len >= TS__MAX_NAME) {
        perr(p, i, "name '%.24s...' is longer than %d characters", t->s, TS__MAX_NAME - 1);
        return -1;
    }
    memcpy(buf, t->s, (size_t)t->len);
    buf[t->len] = 0;
    return 0;
}

/* Reads an identifier at the cursor and advances. */
static int take_name(parser *p, char *buf, const char *what) {
    if (p->status) return -1;
    if (cur(p)->kind != T_IDENT) {
        char d[64];
        perr(p, p->pos, "expected %s, found %s", what, describe(p, p->pos, d, sizeof d));
        return -1;
    }
    if (tok_name(p, p->pos, buf)) return -1;
    advance(p);
    return 0;
}

/* ---------------------------------------------------------------- 3. symbol tables */

static int find_name(const pname *arr, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(arr[i].name, name) == 0) return i;
    return -1;
}

static int add_name(parser *p, pname **arr, int *n, int *caps, const char *name) {
    if (find_name(*arr, *n, name) >= 0) return 0;
    if (grow(p, (void **)arr, caps, *n, sizeof **arr)) return -1;
    snprintf((*arr)[(*n)++].name, TS__MAX_NAME, "%s", name);
    return 0;
}

static int find_param(const parser *p, const char *name) {
    for (int i = 0; i < p->nparams; i++)
        if (strcmp(p->params[i].name, name) == 0) return i;
    return -1;
}

static int find_tile(const parser *p, const char *name) {
    for (int i = p->ntiles - 1; i >= 0; i--)
        if (strcmp(p->tiles[i].name, name) == 0) return i;
    return -1;
}

/* Latest live binding of `name`, else the latest dead one (the builder then
 * reports the scope error), else -1. */
static int find_value(const parser *p, const char *name) {
    for (int i = p->nvalues - 1; i >= 0; i--)
        if (!p->values[i].dead && strcmp(p->values[i].name, name) == 0) return i;
    for (int i = p->nvalues - 1; i >= 0; i--)
        if (strcmp(p->values[i].name, name) == 0) return i;
    return -1;
}

static const char *const reserved_words[] = {"kernel", "tunable", "grid", "for", "in", "carry", "yield", "tile", "points", "inf", "nan",
                                             "true", "false", "fill", "axis", "keepdim", NULL};

static int is_reserved(const char *s) {
    for (int i = 0; reserved_words[i]; i++)
        if (strcmp(reserved_words[i], s) == 0) return 1;
    ts_dtype d;
    return ts_dtype_parse(s, &d) == TS_OK;
}

/* A name on the left of '=' (or a carried value) must not be a declared name. */
static int check_value_name(parser *p, int tok, const char *name) {
    if (is_reserved(name)) { perr(p, tok, "'%s' is a reserved word and cannot name a value", name); return -1; }
    if (find_param(p, name) >= 0) { perr(p, tok, "'%s' is already a parameter", name); return -1; }
    if (find_name(p->sizes, p->nsizes, name) >= 0) { perr(p, tok, "'%s' is already a size", name); return -1; }
    if (find_name(p->tunables, p->ntunables, name) >= 0) { perr(p, tok, "'%s' is already a tunable", name); return -1; }
    if (find_tile(p, name) >= 0) { perr(p, tok, "'%s' is already a tile", name); return -1; }
    return 0;
}

/* Binds `name` to a value at the current depth; `fresh` values (made by this
 * statement) also get the name in the IR (ts_name), so printing keeps it. */
static int bind_value(parser *p, int tok, const char *name, ts_val v, ts_dtype dtype, int rank, int fresh) {
    if (p->status) return -1;
    if (check_value_name(p, tok, name)) return -1;
    if (grow(p, (void **)&p->values, &p->caps_values, p->nvalues, sizeof *p->values)) return -1;
    pvalue *pv = &p->values[p->nvalues++];
    memset(pv, 0, sizeof *pv);
    snprintf(pv->name, sizeof pv->name, "%s", name);
    pv->v = v;
    pv->dtype = dtype;
    pv->rank = rank;
    pv->depth = p->depth;
    if (fresh && ts_name(p->b, v, name) != TS_OK) return bfail(p, tok);
    return 0;
}

/* ---------------------------------------------------------------- 4. helpers: numbers, sizes, dims, accesses */

static int copy_tok(const token *t, char *buf, size_t n) {
    if ((size_t)t->len >= n) return -1;
    memcpy(buf, t->s, (size_t)t->len);
    buf[t->len] = 0;
    return 0;
}

/* [-]INT at the cursor. */
static int parse_int(parser *p, int64_t *out, const char *what) {
    if (p->status) return -1;
    int neg = accept_p(p, P_MINUS);
    const token *t = cur(p);
    if (t->kind != T_INT) {
        char d[64];
        perr(p, p->pos, "expected %s (an integer), found %s", what, describe(p, p->pos, d, sizeof d));
        return -1;
    }
    char buf[32];
    errno = 0;
    char *end = NULL;
    long long v = copy_tok(t, buf, sizeof buf) ? 0 : strtoll(buf, &end, 10);
    if (!end || *end || errno == ERANGE) {
        perr(p, p->pos, "integer '%.*s' is too large", t->len > 32 ? 32 : t->len, t->s);
        return -1;
    }
    advance(p);
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

/* A number literal at token i (INT, FLOAT, inf, nan, true, false); -1 if i is not one. */
static int literal_at(parser *p, int i, double *out) {
    const token *t = tk(p, i);
    if (t->kind == T_INT || t->kind == T_FLOAT) {
        char buf[128];
        if (copy_tok(t, buf, sizeof buf)) {
            perr(p, i, "number '%.24s...' is too long", t->s);
            return -2;
        }
        *out = strtod(buf, NULL);
        return 0;
    }
    if (is_word(p, i, "inf")) { *out = INFINITY; return 0; }
    if (is_word(p, i, "nan")) { *out = NAN; return 0; }
    if (is_word(p, i, "true")) { *out = 1.0; return 0; }
    if (is_word(p, i, "false")) { *out = 0.0; return 0; }
    return -1;
}

/* [-]literal at the cursor (fill=, full's value). */
static int parse_number(parser *p, double *out, const char *what) {
    if (p->status) return -1;
    int neg = accept_p(p, P_MINUS);
    int r = literal_at(p, p->pos, out);
    if (r == -2) return -1;
    if (r < 0) {
        char d[64];
        perr(p, p->pos, "expected %s (a number, inf or nan), found %s", what, describe(p, p->pos, d, sizeof d));
        return -1;
    }
    advance(p);
    if (neg) *out = -*out;
    return 0;
}

static int parse_dtype(parser *p, ts_dtype *out) {
    if (p->status) return -1;
    char name[TS__MAX_NAME];
    const token *t = cur(p);
    if (t->kind != T_IDENT || copy_tok(t, name, sizeof name) || ts_dtype_parse(name, out) != TS_OK) {
        char d[64];
        perr(p, p->pos, "expected a dtype (f32, f16, bf16, f64, i32, i64, u8, bool), found %s", describe(p, p->pos, d, sizeof d));
        return -1;
    }
    advance(p);
    return 0;
}

/* A size: a size symbol that some tensor parameter uses, or a fixed number. */
static int parse_size_ref(parser *p, ts_size *out) {
    if (p->status) return -1;
    int tok = p->pos;
    if (cur(p)->kind == T_INT || at_p(p, P_MINUS)) {
        int64_t n;
        if (parse_int(p, &n, "a size")) return -1;
        *out = ts_size_fixed(p->b, n);
        return *out == TS_NONE ? bfail(p, tok) : 0;
    }
    char name[TS__MAX_NAME];
    if (take_name(p, name, "a size (a size name or a number)")) return -1;
    if (find_name(p->sizes, p->nsizes, name) < 0) {
        perr(p, tok, "unknown size '%s' (sizes are the dims of tensor parameters)", name);
        return -1;
    }
    *out = ts_size_sym(p->b, name);
    return *out == TS_NONE ? bfail(p, tok) : 0;
}

/* Resolves a tile name (live or from a closed loop: the builder reports scope). */
static int parse_tile_ref(parser *p, ts_tile *out) {
    if (p->status) return -1;
    int tok = p->pos;
    char name[TS__MAX_NAME];
    if (take_name(p, name, "a tile name")) return -1;
    int i = find_tile(p, name);
    if (i < 0) {
        perr(p, tok, "unknown tile '%s'", name);
        return -1;
    }
    *out = p->tiles[i].t;
    return 0;
}

/* '[' dim, ... ']' where a dim is a tile or 1. */
static int parse_dims(parser *p, int *rank, ts_tile *dims) {
    if (expect_p(p, P_LBRACK, "to start a list of dims")) return -1;
    *rank = 0;
    if (accept_p(p, P_RBRACK)) return 0;
    for (;;) {
        if (*rank >= 8) { perr(p, p->pos, "too many dims (a tile has at most %d)", TS_MAX_RANK); return -1; }
        if (cur(p)->kind == T_INT) {
            int tok = p->pos;
            int64_t one;
            if (parse_int(p, &one, "a dim")) return -1;
            if (one != 1) { perr(p, tok, "a dim is a tile name or 1, not %lld", (long long)one); return -1; }
            dims[(*rank)++] = TS_NONE;
        } else if (parse_tile_ref(p, &dims[(*rank)++])) {
            return -1;
        }
        if (accept_p(p, P_RBRACK)) return 0;
        if (expect_p(p, P_COMMA, "or ']' in the list of dims")) return -1;
    }
}

static int lookup_param(parser *p, int tok, const char *name) {
    int i = find_param(p, name);
    if (i < 0) perr(p, tok, "unknown tensor '%s'", name);
    return i;
}

/* ---------------------------------------------------------------- 5. expressions */

/* The result of an expression: a value, or a number still waiting for a dtype. */
typedef struct operand {
    int is_lit;
    double lit;
    ts_val v;
    ts_dtype dtype;
    int rank;
    int fresh; /* made by the expression being parsed (not a reference to a named value) */
    int tok;
} operand;

static int parse_expr(parser *p, operand *out);
static int parse_access(parser *p, int *param, ts_index *idx, int *nidx, int *rank);

static int set_val(parser *p, int tok, operand *o, ts_val v, ts_dtype dtype, int rank) {
    if (v == TS_NONE) return bfail(p, tok);
    memset(o, 0, sizeof *o);
    o->v = v;
    o->dtype = dtype;
    o->rank = rank;
    o->fresh = 1;
    o->tok = tok;
    return 0;
}

/* A number next to a value becomes full(dtype, [], number), emitted here. */
static int materialize(parser *p, operand *o, ts_dtype dtype) {
    if (!o->is_lit) return 0;
    ts_val v = ts_full(p->b, dtype, 0, NULL, o->lit);
    return set_val(p, o->tok, o, v, dtype, 0);
}

static int need_value(parser *p, const operand *o, const char *what) {
    if (!o->is_lit) return 0;
    perr(p, o->tok, "%s needs a tile value here, not a number (write full(f32, [], %g) for a constant)", what, o->lit);
    return -1;
}

static int max_i(int a, int b) { return a > b ? a : b; }

static int apply_binary(parser *p, int tok, ts_binary_op op, operand *a, operand *b, operand *out) {
    if (p->status) return -1;
    if (a->is_lit && b->is_lit) {
        perr(p, tok, "both operands of %s are numbers: one must be a tile value to give the dtype (write full(f32, [], x))", ts__binary_name(op));
        return -1;
    }
    if (materialize(p, a, b->dtype) || materialize(p, b, a->dtype)) return -1;
    /* scalar index arithmetic mixes i32 positions with i64 scalars: widen */
    if (a->rank == 0 && b->rank == 0 && a->dtype != b->dtype && (a->dtype == TS_I64 || b->dtype == TS_I64) &&
        (a->dtype == TS_I32 || b->dtype == TS_I32)) {
        operand *n = a->dtype == TS_I32 ? a : b;
        if (set_val(p, n->tok, n, ts_cast(p->b, n->v, TS_I64), TS_I64, 0)) return -1;
    }
    ts_val v = ts_binary(p->b, op, a->v, b->v);
    return set_val(p, tok, out, v, ts__binary_result_dtype(op, a->dtype), max_i(a->rank, b->rank));
}

static int apply_unary(parser *p, int tok, ts_unary_op op, operand *a, operand *out) {
    if (need_value(p, a, ts__unary_name(op))) return -1;
    ts_val v = ts_unary(p->b, op, a->v);
    return set_val(p, tok, out, v, a->dtype, a->rank);
}

static int find_in(const char *(*namef)(int), int count, const token *t) {
    for (int i = 0; i < count; i++) {
        const char *n = namef(i);
        if ((size_t)t->len == strlen(n) && memcmp(t->s, n, (size_t)t->len) == 0) return i;
    }
    return -1;
}
static const char *unary_name_i(int i) { return ts__unary_name((ts_unary_op)i); }
static const char *binary_name_i(int i) { return ts__binary_name((ts_binary_op)i); }
static const char *reduce_name_i(int i) { return ts__reduce_name((ts_reduce_op)i); }

/* The value of a true/false keyword argument. */
static int parse_flag(parser *p, const char *key, int *out) {
    if (at_word(p, "true")) *out = 1;
    else if (at_word(p, "false")) *out = 0;
    else {
        char d[64];
        perr(p, p->pos, "%s is true or false, not %s", key, describe(p, p->pos, d, sizeof d));
        return -1;
    }
    advance(p);
    return 0;
}

/* ", key=value" arguments of reductions, load and gather. */
typedef struct kwargs {
    int has_axis, has_keepdim, has_fill, has_reverse, reverse;
    int64_t axis;
    int keepdim;
    double fill;
    int axis_tok;
} kwargs;

static int parse_kwargs(parser *p, const char *fname, int allow_axis, int allow_fill, kwargs *kw) {
    while (!p->status && accept_p(p, P_COMMA)) {
        int tok = p->pos;
        char key[TS__MAX_NAME];
        if (cur(p)->kind != T_IDENT || !is_p(p, p->pos + 1, P_ASSIGN)) {
            char d[64];
            perr(p, p->pos, "expected a keyword argument (%s) in %s(...), found %s", allow_axis == 2 ? "axis=, reverse=" : allow_axis ? "axis=, keepdim=" : "fill=", fname,
                 describe(p, p->pos, d, sizeof d));
            return -1;
        }
        if (take_name(p, key, "a keyword")) return -1;
        advance(p); /* '=' */
        if (allow_axis && strcmp(key, "axis") == 0 && !kw->has_axis) {
            kw->has_axis = 1;
            kw->axis_tok = p->pos;
            if (parse_int(p, &kw->axis, "the axis")) return -1;
        } else if (allow_axis == 2 && strcmp(key, "reverse") == 0 && !kw->has_reverse) { /* scans */
            kw->has_reverse = 1;
            if (parse_flag(p, key, &kw->reverse)) return -1;
        } else if (allow_axis == 1 && strcmp(key, "keepdim") == 0 && !kw->has_keepdim) {
            kw->has_keepdim = 1;
            if (parse_flag(p, key, &kw->keepdim)) return -1;
        } else if (allow_fill && strcmp(key, "fill") == 0 && !kw->has_fill) {
            kw->has_fill = 1;
            if (parse_number(p, &kw->fill, "the fill value")) return -1;
        } else if (strcmp(key, "axis") == 0 || strcmp(key, "keepdim") == 0 || strcmp(key, "fill") == 0 || strcmp(key, "reverse") == 0) {
            int allowed = strcmp(key, "axis") == 0 ? allow_axis != 0
                          : strcmp(key, "keepdim") == 0 ? allow_axis == 1
                          : strcmp(key, "reverse") == 0 ? allow_axis == 2
                                                        : allow_fill;
            if (allowed) perr(p, tok, "%s= given twice in %s(...)", key, fname);
            else perr(p, tok, "%s(...) takes no %s= argument", fname, key);
            return -1;
        } else {
            perr(p, tok, "unknown keyword argument '%s' in %s(...)", key, fname);
            return -1;
        }
    }
    return p->status ? -1 : 0;
}

/* Parses one argument expression and, unless numbers are allowed, requires a value. */
static int arg_value(parser *p, operand *o, const char *fname) {
    if (parse_expr(p, o)) return -1;
    return need_value(p, o, fname);
}

static int close_call(parser *p, const char *fname) {
    char where[96];
    snprintf(where, sizeof where, "to close %s(...)", fname);
    return expect_p(p, P_RPAREN, where);
}

static int parse_call(parser *p, operand *out) {
    int tok = p->pos;
    char fname[TS__MAX_NAME];
    if (take_name(p, fname, "an operation")) return -1;
    advance(p); /* '(' */
    const token *ft = tk(p, tok);
    operand a, b, c;
    int u = find_in(unary_name_i, TS_UNARY_COUNT, ft);
    int bi = find_in(binary_name_i, TS_BINARY_COUNT, ft);
    int r = find_in(reduce_name_i, TS_REDUCE_COUNT, ft);
    if (u >= 0) {
        if (parse_expr(p, &a) || close_call(p, fname)) return -1;
        return apply_unary(p, tok, (ts_unary_op)u, &a, out);
    }
    if (bi >= 0 || r >= 0) {
        if (parse_expr(p, &a)) return -1;
        int is_reduce = r >= 0 && (bi < 0 || (is_p(p, p->pos, P_COMMA) && tk(p, p->pos + 1)->kind == T_IDENT && is_p(p, p->pos + 2, P_ASSIGN)));
        if (!is_reduce) {
            if (expect_p(p, P_COMMA, "between the two operands") || parse_expr(p, &b) || close_call(p, fname)) return -1;
            return apply_binary(p, tok, (ts_binary_op)bi, &a, &b, out);
        }
        kwargs kw = {0};
        if (parse_kwargs(p, fname, 1, 0, &kw) || close_call(p, fname)) return -1;
        if (need_value(p, &a, fname)) return -1;
        if (!kw.has_axis) {
            perr(p, tok, "%s(...) needs axis= (the dim to reduce, e.g. %s(x, axis=1))", fname, fname);
            return -1;
        }
        int64_t axis = kw.axis;
        if (axis < 0 && axis >= -(int64_t)a.rank) axis += a.rank; /* -1 is the last dim */
        if (axis < INT32_MIN || axis > INT32_MAX) axis = INT32_MAX;
        ts_val v = ts_reduce(p->b, (ts_reduce_op)r, a.v, (int)axis, kw.keepdim);
        ts_dtype dt = r == TS_RED_ARGMAX ? TS_I32 : a.dtype;
        return set_val(p, tok, out, v, dt, kw.keepdim ? a.rank : a.rank - 1);
    }
    if (strcmp(fname, "load") == 0) {
        int param, n;
        ts_index idx[8];
        kwargs kw = {0};
        int rank = 0;
        if (parse_access(p, &param, idx, &n, &rank) || parse_kwargs(p, fname, 0, 1, &kw) || close_call(p, fname)) return -1;
        ts_val v = ts_load(p->b, (ts_param)param, idx, kw.fill);
        return set_val(p, tok, out, v, p->params[param].dtype, rank);
    }
    if (strcmp(fname, "gather") == 0) {
        char tname[TS__MAX_NAME];
        int ttok = p->pos, param;
        ts_tile col;
        kwargs kw = {0};
        if (take_name(p, tname, "the table (a tensor name)") || (param = lookup_param(p, ttok, tname)) < 0) return -1;
        if (expect_p(p, P_COMMA, "after the table") || arg_value(p, &a, fname) || expect_p(p, P_COMMA, "after the ids") || parse_tile_ref(p, &col) ||
            parse_kwargs(p, fname, 0, 1, &kw) || close_call(p, fname))
            return -1;
        ts_val v = ts_gather(p->b, (ts_param)param, a.v, TS_AT(col), kw.fill);
        return set_val(p, tok, out, v, p->params[param].dtype, 2);
    }
    if (strcmp(fname, "scalar") == 0) {
        char pname[TS__MAX_NAME];
        int ptok = p->pos, param;
        if (take_name(p, pname, "a scalar parameter") || (param = lookup_param(p, ptok, pname)) < 0 || close_call(p, fname)) return -1;
        ts_val v = ts_scalar(p->b, (ts_param)param);
        return set_val(p, tok, out, v, p->params[param].dtype, 0);
    }
    if (strcmp(fname, "full") == 0 || strcmp(fname, "zeros") == 0) {
        ts_dtype dt;
        int rank;
        ts_tile dims[8];
        double value = 0.0;
        if (parse_dtype(p, &dt) || expect_p(p, P_COMMA, "after the dtype") || parse_dims(p, &rank, dims)) return -1;
        if (fname[0] == 'f' && (expect_p(p, P_COMMA, "after the dims") || parse_number(p, &value, "the value"))) return -1;
        if (close_call(p, fname)) return -1;
        ts_val v = ts_full(p->b, dt, rank, dims, value);
        return set_val(p, tok, out, v, dt, rank);
    }
    static const char *const scan_names[] = {"cumsum", "cumprod", "cummax", "cummin"};
    for (int si = 0; si < 4; si++) {
        if (strcmp(fname, scan_names[si]) != 0) continue;
        kwargs kw = {0};
        if (parse_expr(p, &a) || parse_kwargs(p, fname, 2, 0, &kw) || close_call(p, fname)) return -1;
        if (need_value(p, &a, fname)) return -1;
        if (!kw.has_axis) {
            perr(p, tok, "%s(...) needs axis= (the dim to scan along, e.g. %s(x, axis=1))", fname, fname);
            return -1;
        }
        int64_t axis = kw.axis;
        if (axis < 0 && axis >= -(int64_t)a.rank) axis += a.rank;
        if (axis < INT32_MIN || axis > INT32_MAX) axis = INT32_MAX;
        return set_val(p, tok, out, ts_scan(p->b, (ts_scan_op)si, a.v, (int)axis, kw.reverse), a.dtype, a.rank);
    }
    if (strcmp(fname, "rand") == 0 || strcmp(fname, "randint") == 0) {
        int rank, stok;
        ts_tile dims[8];
        stok = p->pos;
        if (parse_expr(p, &a)) return -1;
        if (a.is_lit) {
            if (a.lit != floor(a.lit) || fabs(a.lit) > 9.2e18) {
                perr(p, stok, "the seed of %s is an integer, not %g", fname, a.lit);
                return -1;
            }
            if (materialize(p, &a, TS_I64)) return -1;
        }
        if (expect_p(p, P_COMMA, "after the seed (rand(seed, [t1, t2]))") || parse_dims(p, &rank, dims) || close_call(p, fname)) return -1;
        ts_val v = fname[4] ? ts_randint(p->b, a.v, rank, dims) : ts_rand(p->b, a.v, rank, dims);
        return set_val(p, tok, out, v, fname[4] ? TS_I32 : TS_F32, rank);
    }
    if (strcmp(fname, "arange") == 0) {
        ts_tile t;
        if (parse_tile_ref(p, &t) || close_call(p, fname)) return -1;
        return set_val(p, tok, out, ts_arange(p->b, t), TS_I32, 1);
    }
    if (strcmp(fname, "select") == 0 || strcmp(fname, "where") == 0) {
        if (arg_value(p, &c, "the condition of select") || expect_p(p, P_COMMA, "after the condition") || parse_expr(p, &a) ||
            expect_p(p, P_COMMA, "between the two branches") || parse_expr(p, &b) || close_call(p, fname))
            return -1;
        if (a.is_lit && b.is_lit) {
            perr(p, a.tok, "both branches of %s are numbers: one must be a tile value to give the dtype", fname);
            return -1;
        }
        if (materialize(p, &a, b.dtype) || materialize(p, &b, a.dtype)) return -1;
        ts_val v = ts_select(p->b, c.v, a.v, b.v);
        return set_val(p, tok, out, v, a.dtype, max_i(c.rank, max_i(a.rank, b.rank)));
    }
    if (strcmp(fname, "cast") == 0) {
        ts_dtype dt;
        if (arg_value(p, &a, fname) || expect_p(p, P_COMMA, "before the target dtype") || parse_dtype(p, &dt) || close_call(p, fname)) return -1;
        return set_val(p, tok, out, ts_cast(p->b, a.v, dt), dt, a.rank);
    }
    if (strcmp(fname, "expand_dims") == 0) {
        int64_t axis;
        if (arg_value(p, &a, fname) || expect_p(p, P_COMMA, "before the axis") || parse_int(p, &axis, "the axis") || close_call(p, fname)) return -1;
        if (axis < 0 && axis >= -(int64_t)a.rank - 1) axis += a.rank + 1;
        if (axis < INT32_MIN || axis > INT32_MAX) axis = INT32_MAX;
        return set_val(p, tok, out, ts_expand_dims(p->b, a.v, (int)axis), a.dtype, a.rank + 1);
    }
    if (strcmp(fname, "broadcast") == 0) {
        int rank;
        ts_tile dims[8];
        if (arg_value(p, &a, fname) || expect_p(p, P_COMMA, "before the dims") || parse_dims(p, &rank, dims) || close_call(p, fname)) return -1;
        return set_val(p, tok, out, ts_broadcast(p->b, a.v, rank, dims), a.dtype, rank);
    }
    if (strcmp(fname, "transpose") == 0) {
        if (arg_value(p, &a, fname) || close_call(p, fname)) return -1;
        return set_val(p, tok, out, ts_transpose(p->b, a.v), a.dtype, 2);
    }
    if (strcmp(fname, "dot") == 0) {
        if (arg_value(p, &a, fname) || expect_p(p, P_COMMA, "between the operands") || arg_value(p, &b, fname)) return -1;
        ts_val acc = TS_NONE;
        if (accept_p(p, P_COMMA)) {
            if (arg_value(p, &c, fname)) return -1;
            acc = c.v;
        }
        if (close_call(p, fname)) return -1;
        return set_val(p, tok, out, ts_dot(p->b, a.v, b.v, acc), TS_F32, 2);
    }
    if (strcmp(fname, "store") == 0 || strcmp(fname, "atomic_add") == 0) {
        perr(p, tok, "%s(...) is a statement and gives no value", fname);
        return -1;
    }
    perr(p, tok, "unknown operation '%s'", fname);
    return -1;
}

/* A name used as a value: a bound value, or a scalar parameter (ts_scalar). */
static int parse_name_ref(parser *p, operand *out) {
    int tok = p->pos;
    char name[TS__MAX_NAME];
    if (take_name(p, name, "a value")) return -1;
    int i = find_value(p, name);
    if (i >= 0) {
        const pvalue *pv = &p->values[i];
        memset(out, 0, sizeof *out);
        out->v = pv->v;
        out->dtype = pv->dtype;
        out->rank = pv->rank;
        out->tok = tok;
        return 0;
    }
    int pi = find_param(p, name);
    if (pi >= 0 && !p->params[pi].is_tensor) return set_val(p, tok, out, ts_scalar(p->b, (ts_param)pi), p->params[pi].dtype, 0);
    int ti = find_tile(p, name);
    if (ti >= 0 && accept_p(p, P_DOT)) { /* t.begin, t.end, t.id: rank-0 i32 */
        static const char *const pos_names[] = {"begin", "end", "id"};
        for (int w = 0; w < 3; w++)
            if (at_word(p, pos_names[w])) {
                advance(p);
                return set_val(p, tok, out, ts_tile_pos(p->b, p->tiles[ti].t, (ts_pos_kind)w), TS_I32, 0);
            }
        char d[64];
        perr(p, p->pos, "a tile has .begin, .end and .id, not %s", describe(p, p->pos, d, sizeof d));
        return -1;
    }
    if (find_name(p->sizes, p->nsizes, name) >= 0 && ti < 0) { /* a size's value at launch: rank-0 i32 */
        ts_size sz = ts_size_sym(p->b, name);
        if (sz == TS_NONE) return bfail(p, tok);
        return set_val(p, tok, out, ts_size_value(p->b, sz), TS_I32, 0);
    }
    if (pi >= 0) perr(p, tok, "'%s' is a tensor: load a tile of it, e.g. load(%s[...])", name, name);
    else if (ti >= 0) perr(p, tok, "'%s' is a tile, not a value (arange(%s) gives its indices, %s.begin its first)", name, name, name);
    else if (find_name(p->tunables, p->ntunables, name) >= 0) perr(p, tok, "'%s' is a tunable, not a value", name);
    else perr(p, tok, "unknown name '%s'", name);
    return -1;
}

static int parse_primary(parser *p, operand *out) {
    if (p->status) return -1;
    int tok = p->pos;
    double d;
    int r = literal_at(p, tok, &d);
    if (r == -2) return -1;
    if (r == 0 && !is_p(p, tok + 1, P_LPAREN)) {
        advance(p);
        memset(out, 0, sizeof *out);
        out->is_lit = 1;
        out->lit = d;
        out->tok = tok;
        return 0;
    }
    if (accept_p(p, P_LPAREN)) {
        if (parse_expr(p, out)) return -1;
        return expect_p(p, P_RPAREN, "to close '('");
    }
    if (cur(p)->kind == T_IDENT) {
        if (is_p(p, tok + 1, P_LPAREN)) return parse_call(p, out);
        return parse_name_ref(p, out);
    }
    char desc[64];
    perr(p, tok, "expected an expression, found %s", describe(p, tok, desc, sizeof desc));
    return -1;
}

static int enter(parser *p) {
    if (++p->expr_depth > MAX_EXPR_DEPTH) {
        perr(p, p->pos, "expression nested too deeply (more than %d levels)", MAX_EXPR_DEPTH);
        return -1;
    }
    return 0;
}

static int parse_unary(parser *p, operand *out) {
    if (p->status) return -1;
    if (!at_p(p, P_MINUS)) return parse_primary(p, out);
    int tok = p->pos;
    advance(p);
    if (enter(p)) return -1;
    int rc = parse_unary(p, out);
    p->expr_depth--;
    if (rc) return -1;
    if (out->is_lit) {
        out->lit = -out->lit;
        out->tok = tok;
        return 0;
    }
    operand a = *out;
    return apply_unary(p, tok, TS_NEG, &a, out);
}

/* Binary precedence levels, loosest first. */
typedef struct binop {
    punct tok;
    ts_binary_op op;
} binop;
static const binop level_or[] = {{P_OR, TS_OR}, {P_NONE, 0}};
static const binop level_and[] = {{P_AND, TS_AND}, {P_NONE, 0}};
static const binop level_cmp[] = {{P_LT, TS_LT}, {P_LE, TS_LE}, {P_GT, TS_GT}, {P_GE, TS_GE}, {P_EQ, TS_EQ}, {P_NE, TS_NE}, {P_NONE, 0}};
static const binop level_add[] = {{P_PLUS, TS_ADD}, {P_MINUS, TS_SUB}, {P_NONE, 0}};
static const binop level_mul[] = {{P_STAR, TS_MUL}, {P_SLASH, TS_DIV}, {P_PERCENT, TS_MOD}, {P_NONE, 0}};
static const binop *const levels[] = {level_or, level_and, level_cmp, level_add, level_mul};
#define NLEVELS 5

static int parse_level(parser *p, int level, operand *out) {
    if (level == NLEVELS) return parse_unary(p, out);
    if (parse_level(p, level + 1, out)) return -1;
    for (;;) {
        const binop *bo = levels[level];
        while (bo->tok != P_NONE && !at_p(p, bo->tok)) bo++;
        if (bo->tok == P_NONE) return 0;
        int tok = p->pos;
        advance(p);
        operand a = *out, b;
        if (parse_level(p, level + 1, &b)) return -1;
        if (apply_binary(p, tok, bo->op, &a, &b, out)) return -1;
    }
}

static int parse_expr(parser *p, operand *out) {
    if (p->status) return -1;
    if (enter(p)) return -1;
    int rc = parse_level(p, 0, out);
    p->expr_depth--;
    return rc;
}

/* ---------------------------------------------------------------- 5b. indices */

/* `+ e - e ...` after a tile in an index: the offset, a rank-0 integer. */
static int parse_offset(parser *p, operand *acc) {
    memset(acc, 0, sizeof *acc);
    acc->is_lit = 1;
    acc->tok = p->pos;
    while (!p->status && (at_p(p, P_PLUS) || at_p(p, P_MINUS))) {
        int tok = p->pos, neg = at_p(p, P_MINUS);
        advance(p);
        operand t;
        if (parse_level(p, NLEVELS - 1, &t)) return -1; /* a term: binds tighter than + and - */
        if (acc->is_lit && t.is_lit) acc->lit += neg ? -t.lit : t.lit;
        else if (acc->is_lit && acc->lit == 0.0 && !neg) *acc = t; /* the first term: no 0 + t */
        else if (acc->is_lit && acc->lit == 0.0) {
            if (apply_unary(p, tok, TS_NEG, &t, acc)) return -1;
        } else if (apply_binary(p, tok, neg ? TS_SUB : TS_ADD, acc, &t, acc)) return -1;
    }
    if (acc->is_lit) {
        if (acc->lit != floor(acc->lit) || fabs(acc->lit) > 2147483647.0) {
            perr(p, acc->tok, "an index offset is an integer, not %g", acc->lit);
            return -1;
        }
        if (materialize(p, acc, TS_I32)) return -1;
    }
    if (ts_dtype_is_float(acc->dtype) || acc->dtype == TS_BOOL || acc->rank != 0) {
        perr(p, acc->tok, "an index offset is a scalar integer (literals, integer scalars, sizes, t.begin, t.end), not %s of rank %d",
             ts_dtype_name(acc->dtype), acc->rank);
        return -1;
    }
    return 0;
}

/* NAME '[' index, ... ']' with index = tile | tile + offset | tile.begin |
 * an integer | an integer expression (rank 0: one index; a tile value: its
 * elements, adding its dims). *rank: the dims the access adds. */
static int parse_access(parser *p, int *param, ts_index *idx, int *nidx, int *rank) {
    if (p->status) return -1;
    int tok = p->pos;
    char name[TS__MAX_NAME];
    if (take_name(p, name, "a tensor name")) return -1;
    if ((*param = lookup_param(p, tok, name)) < 0) return -1;
    if (expect_p(p, P_LBRACK, "after the tensor name (write x[tm, tn])")) return -1;
    *nidx = 0;
    *rank = 0;
    for (;;) {
        if (*nidx >= 8) { perr(p, p->pos, "too many indices"); return -1; }
        ts_index *ix = &idx[(*nidx)++];
        int itok = p->pos, is_tile = 0;
        if (cur(p)->kind == T_IDENT) {
            char tn[TS__MAX_NAME];
            if (tok_name(p, itok, tn)) return -1;
            is_tile = find_tile(p, tn) >= 0 && find_value(p, tn) < 0;
        }
        if (is_tile && !is_p(p, itok + 1, P_DOT)) {
            ts_tile t;
            if (parse_tile_ref(p, &t)) return -1;
            if (at_p(p, P_PLUS) || at_p(p, P_MINUS)) {
                operand off;
                if (parse_offset(p, &off)) return -1;
                *ix = TS_AT_SHIFT(t, off.v);
            } else *ix = TS_AT(t);
            (*rank)++;
        } else if (is_tile && is_word(p, itok + 2, "begin") && (is_p(p, itok + 3, P_COMMA) || is_p(p, itok + 3, P_RBRACK))) {
            ts_tile t;
            if (parse_tile_ref(p, &t)) return -1;
            advance(p); /* '.' */
            advance(p); /* begin */
            *ix = TS_POINT(t);
        } else {
            operand o;
            if (parse_expr(p, &o)) return -1;
            if (o.is_lit) {
                if (o.lit != floor(o.lit) || fabs(o.lit) > 9.2e18) {
                    perr(p, itok, "an index is an integer, not %g", o.lit);
                    return -1;
                }
                *ix = TS_CONST_IDX((int64_t)o.lit);
            } else if (ts_dtype_is_float(o.dtype) || o.dtype == TS_BOOL) {
                perr(p, itok, "an index is an integer; this expression is %s (cast it, or index with a tile)", ts_dtype_name(o.dtype));
                return -1;
            } else if (o.rank == 0) {
                *ix = TS_AT_SCALAR(o.v);
            } else {
                *ix = TS_AT_VALUE(o.v);
                *rank += o.rank;
            }
        }
        if (accept_p(p, P_RBRACK)) break;
        if (expect_p(p, P_COMMA, "or ']' in the index list")) return -1;
    }
    const pparam *pp = &p->params[*param];
    if (pp->is_tensor && *nidx != pp->rank) {
        perr(p, tok, "tensor '%s' has rank %d but is indexed with %d %s", pp->name, pp->rank, *nidx, *nidx == 1 ? "index" : "indices");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- 6. statements */

static int parse_block(parser *p, int loop_tile_tok, int ncarry, ts_val *yields, const ts_dtype *carry_dtypes);

/* A statement ends at a newline or right before '}'. */
static int end_statement(parser *p) {
    if (p->status) return -1;
    if (at_p(p, P_RBRACE)) return 0;
    if (cur(p)->kind == T_NL) {
        advance(p);
        return 0;
    }
    char d[64];
    perr(p, p->pos, "expected the end of the line, found %s", describe(p, p->pos, d, sizeof d));
    return -1;
}

/* Parameters are declared in the header but built once the optional `sizes`
 * line has fixed the numbering of size symbols. */
static int build_params(parser *p) {
    if (p->params_built) return 0;
    p->params_built = 1;
    for (int i = 0; i < p->nparams && !p->status; i++) {
        pparam *pp = &p->params[i];
        ts_size sizes[8];
        for (int d = 0; d < pp->rank; d++) {
            int save = p->pos;
            p->pos = pp->size_tok[d];
            int rc = parse_size_ref(p, &sizes[d]);
            p->pos = save;
            if (rc) return -1;
        }
        ts_param id = pp->is_tensor ? ts_param_tensor(p->b, pp->name, pp->dtype, pp->rank, sizes) : ts_param_scalar(p->b, pp->name, pp->dtype);
        if (id == TS_NONE) return bfail(p, pp->name_tok);
    }
    return p->status ? -1 : 0;
}

/* sizes M, N, K: numbers the size symbols in this order (part of the hash). */
static int parse_sizes(parser *p) {
    advance(p);
    for (;;) {
        int tok = p->pos;
        if (cur(p)->kind == T_INT) {
            int64_t n;
            if (parse_int(p, &n, "a size")) return -1;
            if (ts_size_fixed(p->b, n) == TS_NONE) return bfail(p, tok);
        } else {
            char name[TS__MAX_NAME];
            if (take_name(p, name, "a size name")) return -1;
            if (find_name(p->sizes, p->nsizes, name) < 0) {
                perr(p, tok, "size '%s' is not a dim of any tensor parameter", name);
                return -1;
            }
            if (ts_size_sym(p->b, name) == TS_NONE) return bfail(p, tok);
        }
        if (!accept_p(p, P_COMMA)) break;
    }
    return build_params(p) || end_statement(p);
}

/* tunable NAME = DEFAULT in MIN..MAX */
static int parse_tunable(parser *p) {
    advance(p);
    int tok = p->pos;
    char name[TS__MAX_NAME];
    int64_t def, lo, hi;
    if (take_name(p, name, "the tunable's name") || expect_p(p, P_ASSIGN, "after the tunable's name (tunable B = 64 in 16..128)") ||
        parse_int(p, &def, "the default") || expect_word(p, "in", "after the default (tunable B = 64 in 16..128)") || parse_int(p, &lo, "the minimum") ||
        expect_p(p, P_DOTDOT, "between the minimum and the maximum") || parse_int(p, &hi, "the maximum"))
        return -1;
    if (ts_tunable(p->b, name, lo, hi, def) != TS_OK) return bfail(p, tok);
    if (add_name(p, &p->tunables, &p->ntunables, &p->caps_tunables, name)) return -1;
    return end_statement(p);
}

/* NAME in tile(EXTENT[, BLOCK]) | NAME in points(EXTENT) */
typedef struct tiledecl {
    char name[TS__MAX_NAME];
    int name_tok, block_tok, kind_tok;
    int points, has_block;
    char block[TS__MAX_NAME];
    ts_size extent;
    int ranged;       /* tile(lo .. hi, BLOCK) */
    ts_val lo, hi;
} tiledecl;

/* 1 when the tile(...) at p->pos holds a '..' at its own nesting level. */
static int tile_has_range(const parser *p) {
    int depth = 0;
    for (int i = p->pos; tk(p, i)->kind != T_EOF && tk(p, i)->kind != T_NL; i++) {
        if (is_p(p, i, P_LPAREN) || is_p(p, i, P_LBRACK)) depth++;
        else if (is_p(p, i, P_RPAREN) || is_p(p, i, P_RBRACK)) {
            if (--depth < 0) return 0;
        } else if (depth == 0 && is_p(p, i, P_COMMA)) return 0;
        else if (depth == 0 && is_p(p, i, P_DOTDOT)) return 1;
    }
    return 0;
}

/* One end of a range: a rank-0 integer (a number becomes an i32). */
static int parse_range_end(parser *p, ts_val *out, const char *which) {
    operand o;
    int tok = p->pos;
    if (parse_expr(p, &o)) return -1;
    if (o.is_lit) {
        if (o.lit != floor(o.lit) || fabs(o.lit) > 2147483647.0) {
            perr(p, tok, "the %s of a range is an integer, not %g", which, o.lit);
            return -1;
        }
        if (materialize(p, &o, TS_I32)) return -1;
    }
    if (ts_dtype_is_float(o.dtype) || o.dtype == TS_BOOL || o.rank != 0) {
        perr(p, tok, "the %s of a range is a scalar integer (e.g. 0, N, t.end, load(offsets[tb.begin])), not %s of rank %d", which,
             ts_dtype_name(o.dtype), o.rank);
        return -1;
    }
    *out = o.v;
    return 0;
}

static int parse_tiledecl(parser *p, tiledecl *d, int loop) {
    memset(d, 0, sizeof *d);
    d->name_tok = p->pos;
    if (take_name(p, d->name, "a tile name") || expect_word(p, "in", "after the tile name (tm in tile(M, BLOCK_M))")) return -1;
    d->kind_tok = p->pos;
    if (at_word(p, "points")) d->points = 1;
    else if (!at_word(p, "tile")) {
        char desc[64];
        perr(p, p->pos, "expected tile(...) or points(...), found %s", describe(p, p->pos, desc, sizeof desc));
        return -1;
    }
    advance(p);
    if (expect_p(p, P_LPAREN, d->points ? "after 'points'" : "after 'tile'")) return -1;
    if (!d->points && tile_has_range(p)) {
        if (!loop) {
            perr(p, d->kind_tok, "a grid tile runs over a size, not a range (ranges are for loops: for t in tile(lo .. hi, BLOCK))");
            return -1;
        }
        d->ranged = 1;
        if (parse_range_end(p, &d->lo, "start") || expect_p(p, P_DOTDOT, "between the ends of a range (tile(lo .. hi, BLOCK))") ||
            parse_range_end(p, &d->hi, "end"))
            return -1;
    } else if (parse_size_ref(p, &d->extent)) return -1;
    if (!d->points && accept_p(p, P_COMMA)) {
        d->has_block = 1;
        d->block_tok = p->pos;
        if (take_name(p, d->block, "a tunable (the block size)")) return -1;
    }
    return expect_p(p, P_RPAREN, d->points ? "to close points(...)" : "to close tile(...)");
}

static int add_tile(parser *p, const char *name, ts_tile t) {
    if (grow(p, (void **)&p->tiles, &p->caps_tiles, p->ntiles, sizeof *p->tiles)) return -1;
    snprintf(p->tiles[p->ntiles].name, TS__MAX_NAME, "%s", name);
    p->tiles[p->ntiles++].t = t;
    return 0;
}

/* A builder failure about a tile: unknown tunables point at the block. */
static int tile_fail(parser *p, const tiledecl *d) {
    int tok = d->name_tok;
    if (d->has_block && find_name(p->tunables, p->ntunables, d->block) < 0) tok = d->block_tok;
    return bfail(p, tok);
}

/* grid TILEDECL, ... */
static int parse_grid(parser *p) {
    advance(p);
    for (;;) {
        tiledecl d;
        if (parse_tiledecl(p, &d, 0)) return -1;
        ts_tile t = d.points ? ts_grid_point(p->b, d.name, d.extent) : ts_grid_tile(p->b, d.name, d.extent, d.has_block ? d.block : NULL);
        if (t == TS_NONE) return tile_fail(p, &d);
        if (add_tile(p, d.name, t)) return -1;
        if (!accept_p(p, P_COMMA)) break;
    }
    return end_statement(p);
}

/* [r1, r2 =] for TILEDECL [carry (c1 = e1, ...)] { body [yield ...] } */
static int parse_for(parser *p, const int *res_toks, int nres) {
    int for_tok = p->pos;
    advance(p);
    tiledecl d;
    if (parse_tiledecl(p, &d, 1)) return -1;
    if (d.points) {
        perr(p, d.kind_tok, "a loop cannot run over points(...); use tile(EXTENT) or tile(EXTENT, BLOCK)");
        return -1;
    }
    int carry_toks[MAX_LIST], ncarry = 0;
    ts_val init[MAX_LIST], carried[MAX_LIST], yields[MAX_LIST], results[MAX_LIST];
    ts_dtype dtypes[MAX_LIST];
    int ranks[MAX_LIST];
    if (at_word(p, "carry")) {
        advance(p);
        if (expect_p(p, P_LPAREN, "after 'carry'")) return -1;
        for (;;) {
            if (ncarry >= MAX_LIST) { perr(p, p->pos, "too many carried values"); return -1; }
            carry_toks[ncarry] = p->pos;
            char cname[TS__MAX_NAME];
            operand o;
            if (take_name(p, cname, "a carried value's name") || expect_p(p, P_ASSIGN, "after the carried value's name (carry (acc = a0))") ||
                parse_expr(p, &o) || need_value(p, &o, "a carried value's start"))
                return -1;
            init[ncarry] = o.v;
            dtypes[ncarry] = o.dtype;
            ranks[ncarry] = o.rank;
            ncarry++;
            if (accept_p(p, P_RPAREN)) break;
            if (expect_p(p, P_COMMA, "or ')' in the carry list")) return -1;
        }
    }
    if (nres != ncarry) {
        if (ncarry == 0) perr(p, for_tok, "this loop carries no values, so it has no results to bind");
        else if (nres == 0) perr(p, for_tok, "loop '%s' carries %d value%s: bind %s (e.g. acc = for ...)", d.name, ncarry, ncarry > 1 ? "s" : "", ncarry > 1 ? "them" : "it");
        else perr(p, for_tok, "loop '%s' carries %d value%s but %d name%s bound", d.name, ncarry, ncarry > 1 ? "s" : "", nres, nres > 1 ? "s are" : " is");
        return -1;
    }
    if (p->depth >= MAX_LOOP_DEPTH) {
        perr(p, for_tok, "loops nested too deeply");
        return -1;
    }
    if (d.ranged && !d.has_block) {
        perr(p, d.kind_tok, "a loop over a range needs a block size: tile(lo .. hi, BLOCK)");
        return -1;
    }
    ts_tile t = d.ranged ? ts_loop_begin_range(p->b, d.name, d.lo, d.hi, d.block, ncarry, init, carried)
                         : ts_loop_begin(p->b, d.name, d.extent, d.has_block ? d.block : NULL, ncarry, init, carried);
    if (t == TS_NONE) return tile_fail(p, &d);
    if (add_tile(p, d.name, t)) return -1;
    int base = p->nvalues;
    p->depth++;
    for (int i = 0; i < ncarry; i++) {
        char cname[TS__MAX_NAME];
        if (tok_name(p, carry_toks[i], cname) || bind_value(p, carry_toks[i], cname, carried[i], dtypes[i], ranks[i], 1)) return -1;
    }
    if (expect_p(p, P_LBRACE, "to open the loop body")) return -1;
    int end_tok = parse_block(p, d.name_tok, ncarry, yields, dtypes);
    if (end_tok < 0) return -1;
    if (ts_loop_end(p->b, ncarry ? yields : NULL, ncarry ? results : NULL) != TS_OK) return bfail(p, end_tok);
    p->depth--;
    for (int i = base; i < p->nvalues; i++)
        if (p->values[i].depth > p->depth) p->values[i].dead = 1;
    for (int i = 0; i < nres; i++) {
        char rname[TS__MAX_NAME];
        if (tok_name(p, res_toks[i], rname) || bind_value(p, res_toks[i], rname, results[i], dtypes[i], ranks[i], 1)) return -1;
    }
    return end_statement(p);
}

/* yield e | yield e1, e2 | yield (e1, e2): must end the loop body. */
static int parse_yield(parser *p, int ncarry, ts_val *yields, const ts_dtype *dtypes, int *end_tok) {
    int ytok = p->pos;
    advance(p);
    int paren = 0;
    if (at_p(p, P_LPAREN)) { /* a parenthesised list, or a parenthesised first expression */
        int depth = 0, commas = 0, i = p->pos;
        for (; tk(p, i)->kind != T_EOF && tk(p, i)->kind != T_NL; i++) {
            if (is_p(p, i, P_LPAREN) || is_p(p, i, P_LBRACK)) depth++;
            else if (is_p(p, i, P_RPAREN) || is_p(p, i, P_RBRACK)) {
                if (--depth == 0) break;
            } else if (depth == 1 && is_p(p, i, P_COMMA)) commas++;
        }
        if (commas && (tk(p, i + 1)->kind == T_NL || is_p(p, i + 1, P_RBRACE))) {
            paren = 1;
            advance(p);
        }
    }
    int n = 0;
    for (;;) {
        operand o;
        if (parse_expr(p, &o)) return -1;
        if (n < ncarry) {
            if (materialize(p, &o, dtypes[n])) return -1;
            yields[n] = o.v;
        }
        n++;
        if (!accept_p(p, P_COMMA)) break;
    }
    if (paren && expect_p(p, P_RPAREN, "to close the yield list")) return -1;
    if (n != ncarry) {
        perr(p, ytok, "the loop carries %d value%s but yield gives %d", ncarry, ncarry == 1 ? "" : "s", n);
        return -1;
    }
    *end_tok = ytok;
    while (cur(p)->kind == T_NL) advance(p);
    if (!at_p(p, P_RBRACE)) {
        char d[64];
        perr(p, p->pos, "yield must be the last statement of the loop body; found %s after it", describe(p, p->pos, d, sizeof d));
        return -1;
    }
    return 0;
}

/* store(ACCESS, expr) / atomic_add(ACCESS, expr) */
static int parse_store(parser *p) {
    int tok = p->pos;
    int atomic = at_word(p, "atomic_add");
    const char *fname = atomic ? "atomic_add" : "store";
    advance(p);
    advance(p); /* '(' */
    int param, n;
    ts_index idx[8];
    operand v;
    int arank;
    if (parse_access(p, &param, idx, &n, &arank) || expect_p(p, P_COMMA, "after the tensor access") || parse_expr(p, &v) || close_call(p, fname)) return -1;
    if (materialize(p, &v, p->params[param].dtype)) return -1;
    ts_status s = atomic ? ts_atomic_add(p->b, (ts_param)param, idx, v.v) : ts_store(p->b, (ts_param)param, idx, v.v);
    if (s != TS_OK) return bfail(p, tok);
    return end_statement(p);
}

/* NAME = expr | N1, N2 = for ... */
static int parse_assign(parser *p) {
    int toks[MAX_LIST], n = 0;
    for (;;) {
        if (n >= MAX_LIST) { perr(p, p->pos, "too many names on the left of '='"); return -1; }
        if (cur(p)->kind != T_IDENT) {
            char d[64];
            perr(p, p->pos, "expected a name, found %s", describe(p, p->pos, d, sizeof d));
            return -1;
        }
        char name[TS__MAX_NAME];
        if (tok_name(p, p->pos, name) || check_value_name(p, p->pos, name)) return -1;
        toks[n++] = p->pos;
        advance(p);
        if (accept_p(p, P_ASSIGN)) break;
        if (expect_p(p, P_COMMA, "or '=' after the name")) return -1;
    }
    if (at_word(p, "for") && tk(p, p->pos + 1)->kind == T_IDENT) return parse_for(p, toks, n);
    if (n > 1) {
        perr(p, toks[1], "only a loop gives several values (a, b = for ...)");
        return -1;
    }
    operand o;
    if (parse_expr(p, &o)) return -1;
    if (o.is_lit) {
        perr(p, o.tok, "a number alone has no dtype: write full(f32, [], %g) or use it next to a tile value", o.lit);
        return -1;
    }
    char name[TS__MAX_NAME];
    if (tok_name(p, toks[0], name) || bind_value(p, toks[0], name, o.v, o.dtype, o.rank, o.fresh)) return -1;
    return end_statement(p);
}

static int parse_statement(parser *p, int first, int in_loop, int ncarry, ts_val *yields, const ts_dtype *dtypes, int *yield_tok) {
    const token *t = cur(p);
    int next_kind = tk(p, p->pos + 1)->kind;
    int next_assign = is_p(p, p->pos + 1, P_ASSIGN) || is_p(p, p->pos + 1, P_COMMA);
    char d[64];
    if (t->kind != T_IDENT) {
        perr(p, p->pos, "expected a statement, found %s", describe(p, p->pos, d, sizeof d));
        return -1;
    }
    if (at_word(p, "sizes") && (next_kind == T_IDENT || next_kind == T_INT)) {
        if (!first) {
            perr(p, p->pos, "'sizes' must be the first line of the kernel body");
            return -1;
        }
        return parse_sizes(p);
    }
    if (build_params(p)) return -1;
    if (next_assign) return parse_assign(p);
    if (at_word(p, "tunable") && next_kind == T_IDENT) return parse_tunable(p);
    if (at_word(p, "grid") && next_kind == T_IDENT) return parse_grid(p);
    if (at_word(p, "for") && next_kind == T_IDENT) return parse_for(p, NULL, 0);
    if ((at_word(p, "store") || at_word(p, "atomic_add")) && is_p(p, p->pos + 1, P_LPAREN)) return parse_store(p);
    if (at_word(p, "yield")) {
        if (!in_loop) {
            perr(p, p->pos, "yield outside a loop");
            return -1;
        }
        return parse_yield(p, ncarry, yields, dtypes, yield_tok);
    }
    if (is_p(p, p->pos + 1, P_LPAREN)) {
        perr(p, p->pos, "the value of %.*s(...) is not used: assign it (name = %.*s(...))", t->len > 32 ? 32 : t->len, t->s,
             t->len > 32 ? 32 : t->len, t->s);
        return -1;
    }
    perr(p, p->pos, "expected a statement, found %s", describe(p, p->pos, d, sizeof d));
    return -1;
}

/* Statements up to the matching '}', which it consumes. For a loop body,
 * returns the token where the loop ends (its yield or its '}'), else 0. */
static int parse_block(parser *p, int loop_tile_tok, int ncarry, ts_val *yields, const ts_dtype *dtypes) {
    int in_loop = loop_tile_tok >= 0, first = 1, yield_tok = -1;
    for (;;) {
        while (cur(p)->kind == T_NL) advance(p);
        if (p->status) return -1;
        if (cur(p)->kind == T_EOF) {
            perr(p, p->pos, "missing '}' at the end of the %s", in_loop ? "loop body" : "kernel");
            return -1;
        }
        if (at_p(p, P_RBRACE)) break;
        if (parse_statement(p, first && !in_loop, in_loop, ncarry, yields, dtypes, &yield_tok)) return -1;
        first = 0;
        if (yield_tok >= 0) break;
    }
    int end_tok = yield_tok >= 0 ? yield_tok : p->pos;
    if (in_loop && ncarry && yield_tok < 0) {
        char name[TS__MAX_NAME];
        if (tok_name(p, loop_tile_tok, name)) return -1;
        perr(p, p->pos, "loop '%s' carries %d value%s but its body has no yield", name, ncarry, ncarry == 1 ? "" : "s");
        return -1;
    }
    if (!in_loop && build_params(p)) return -1;
    advance(p); /* '}' */
    return end_tok;
}

/* ---------------------------------------------------------------- 7. the kernel */

/* kernel NAME(PARAM, ...) { body } */
static int parse_kernel(parser *p) {
    while (cur(p)->kind == T_NL) advance(p);
    if (expect_word(p, "kernel", "at the start of the file (kernel NAME(params) { ... })")) return -1;
    p->kernel_tok = p->pos;
    char kname[TS__MAX_NAME];
    if (take_name(p, kname, "the kernel's name")) return -1;
    if (ts_builder_create(kname, &p->b) != TS_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ts_last_error());
        perr_s(p, p->kernel_tok, TS_ERR_NAME, "%s", msg);
        return -1;
    }
    if (expect_p(p, P_LPAREN, "after the kernel's name")) return -1;
    if (!accept_p(p, P_RPAREN)) {
        for (;;) {
            if (grow(p, (void **)&p->params, &p->caps_params, p->nparams, sizeof *p->params)) return -1;
            pparam *pp = &p->params[p->nparams];
            memset(pp, 0, sizeof *pp);
            pp->name_tok = p->pos;
            if (take_name(p, pp->name, "a parameter name") || expect_p(p, P_COLON, "after the parameter name (x: f32[M, N])") ||
                parse_dtype(p, &pp->dtype))
                return -1;
            if (accept_p(p, P_LBRACK)) {
                pp->is_tensor = 1;
                if (!at_p(p, P_RBRACK)) {
                    for (;;) {
                        if (pp->rank >= 8) { perr(p, p->pos, "too many dims (a tensor has at most %d)", TS_MAX_RANK); return -1; }
                        pp->size_tok[pp->rank++] = p->pos;
                        if (cur(p)->kind == T_IDENT) {
                            char sname[TS__MAX_NAME];
                            if (take_name(p, sname, "a size") || add_name(p, &p->sizes, &p->nsizes, &p->caps_sizes, sname)) return -1;
                        } else {
                            int64_t n;
                            if (parse_int(p, &n, "a size (a name or a number)")) return -1;
                        }
                        if (accept_p(p, P_RBRACK)) break;
                        if (expect_p(p, P_COMMA, "or ']' in the list of sizes")) return -1;
                    }
                } else {
                    advance(p);
                }
            }
            p->nparams++;
            if (accept_p(p, P_RPAREN)) break;
            if (expect_p(p, P_COMMA, "or ')' after a parameter")) return -1;
        }
    }
    while (cur(p)->kind == T_NL) advance(p);
    if (expect_p(p, P_LBRACE, "to open the kernel body")) return -1;
    if (parse_block(p, -1, 0, NULL, NULL) < 0) return -1;
    while (cur(p)->kind == T_NL) advance(p);
    if (cur(p)->kind != T_EOF) {
        char d[64];
        perr(p, p->pos, "unexpected %s after the kernel (one kernel per file)", describe(p, p->pos, d, sizeof d));
        return -1;
    }
    return 0;
}

ts_status ts_kernel_parse(const char *text, const char *filename, ts_kernel **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_kernel_parse: out is NULL");
    *out = NULL;
    if (!text) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_kernel_parse: text is NULL");
    parser p;
    memset(&p, 0, sizeof p);
    p.src = text;
    p.file = filename && *filename ? filename : "<input>";
    lex(&p);
    if (!p.status) {
        p.pos = 0;
        parse_kernel(&p);
    }
    if (!p.status) {
        ts_status s = ts_builder_finish(p.b, out);
        if (s != TS_OK) bfail(&p, p.kernel_tok);
    }
    ts_builder_destroy(p.b);
    free(p.toks);
    free(p.params);
    free(p.sizes);
    free(p.tunables);
    free(p.tiles);
    free(p.values);
    if (p.status) {
        ts_kernel_destroy(*out);
        *out = NULL;
    }
    return p.status;
}
