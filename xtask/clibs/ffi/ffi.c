/* eryx's libffi for wasm32-wasi (see ffi.h for what it can and cannot do).

   wasm's C ABI (clang's WebAssembly "BasicCABI"): integers up to 32 bits
   and pointers are i32 (the caller sign- or zero-extends smaller ones),
   64-bit integers i64, float f32, double f64. A struct or union with one
   scalar member (however nested) travels as that scalar, an empty one not
   at all, any other is passed as a pointer to a copy the caller makes and
   returned through a pointer the caller passes first. Variadic arguments
   go in a buffer whose address follows the fixed arguments, each at its
   own alignment. */
#include "ffi.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The few CPython calls used to report an unsupported call as a Python
   exception: _cffi_backend calls ffi_call with the GIL released. */
typedef struct _object PyObject;
extern PyObject *PyExc_NotImplementedError;
extern void PyErr_SetString(PyObject *type, const char *message);
extern int PyGILState_Ensure(void);
extern void PyGILState_Release(int state);

#define SCALAR(name, kind, t)                                                  \
  ffi_type ffi_type_##name = {sizeof(t), _Alignof(t), kind, NULL}
SCALAR(uint8, FFI_TYPE_UINT8, uint8_t);
SCALAR(sint8, FFI_TYPE_SINT8, int8_t);
SCALAR(uint16, FFI_TYPE_UINT16, uint16_t);
SCALAR(sint16, FFI_TYPE_SINT16, int16_t);
SCALAR(uint32, FFI_TYPE_UINT32, uint32_t);
SCALAR(sint32, FFI_TYPE_SINT32, int32_t);
SCALAR(uint64, FFI_TYPE_UINT64, uint64_t);
SCALAR(sint64, FFI_TYPE_SINT64, int64_t);
SCALAR(float, FFI_TYPE_FLOAT, float);
SCALAR(double, FFI_TYPE_DOUBLE, double);
SCALAR(longdouble, FFI_TYPE_LONGDOUBLE, long double);
SCALAR(pointer, FFI_TYPE_POINTER, void *);
SCALAR(complex_float, FFI_TYPE_COMPLEX, _Complex float);
SCALAR(complex_double, FFI_TYPE_COMPLEX, _Complex double);
ffi_type ffi_type_void = {1, 1, FFI_TYPE_VOID, NULL};

/* How a value travels. */
enum pass {
  PASS_NONE,     /* void, or an empty struct */
  PASS_I32,
  PASS_I64,
  PASS_F32,
  PASS_F64,
  PASS_MEMORY,   /* a struct by pointer (argument) or sret (result) */
  PASS_UNKNOWN   /* long double, complex: not supported by ffi_call */
};

/* cif->flags: the result's pass in the low byte; CALLABLE when ffi_call
   can make the call; VARIADIC with the fixed argument count in `bytes`;
   WIDE when one argument is a 64-bit integer. */
#define CALLABLE 0x100u
#define VARIADIC 0x200u
#define WIDE 0x400u
#define MAX_WORDS 8
/* Arguments in all (the 64-bit one included) of a call with a WIDE one. */
#define MAX_WIDE_ARGS 6

static size_t align_up(size_t n, size_t a) { return a ? (n + a - 1) / a * a : n; }

/* Lays out a struct whose size libffi's callers left 0. */
static ffi_status layout(ffi_type *t) {
  if (t == NULL)
    return FFI_BAD_TYPEDEF;
  if (t->type != FFI_TYPE_STRUCT || t->size != 0)
    return FFI_OK;
  if (t->elements == NULL)
    return FFI_BAD_TYPEDEF;
  size_t size = 0;
  unsigned short align = 1;
  for (ffi_type **e = t->elements; *e; e++) {
    if (layout(*e) != FFI_OK)
      return FFI_BAD_TYPEDEF;
    size = align_up(size, (*e)->alignment) + (*e)->size;
    if ((*e)->alignment > align)
      align = (*e)->alignment;
  }
  t->alignment = align;
  t->size = align_up(size, align);
  return FFI_OK;
}

/* The one scalar member of a struct (nested structs included), or NULL. */
static ffi_type *single_element(ffi_type *t) {
  ffi_type *found = NULL;
  for (ffi_type **e = t->elements; e && *e; e++) {
    ffi_type *m = *e;
    if (m->type == FFI_TYPE_STRUCT) {
      if (m->size == 0)
        continue;
      m = single_element(m);
      if (m == NULL)
        return NULL;
    }
    if (found != NULL)
      return NULL;
    found = m;
  }
  return found != NULL && found->size == t->size ? found : NULL;
}

static enum pass classify(ffi_type *t) {
  switch (t->type) {
  case FFI_TYPE_VOID:
    return PASS_NONE;
  case FFI_TYPE_INT:
  case FFI_TYPE_UINT8:
  case FFI_TYPE_SINT8:
  case FFI_TYPE_UINT16:
  case FFI_TYPE_SINT16:
  case FFI_TYPE_UINT32:
  case FFI_TYPE_SINT32:
  case FFI_TYPE_POINTER:
    return PASS_I32;
  case FFI_TYPE_UINT64:
  case FFI_TYPE_SINT64:
    return PASS_I64;
  case FFI_TYPE_FLOAT:
    return PASS_F32;
  case FFI_TYPE_DOUBLE:
    return PASS_F64;
  case FFI_TYPE_STRUCT: {
    if (t->size == 0)
      return PASS_NONE;
    ffi_type *one = single_element(t);
    return one != NULL ? classify(one) : PASS_MEMORY;
  }
  default:
    return PASS_UNKNOWN;
  }
}

static ffi_status prep(ffi_cif *cif, ffi_abi abi, unsigned nfixed, unsigned ntotal,
                       ffi_type *rtype, ffi_type **atypes, int variadic) {
  if (cif == NULL || abi <= FFI_FIRST_ABI || abi >= FFI_LAST_ABI)
    return FFI_BAD_ABI;
  if (layout(rtype) != FFI_OK)
    return FFI_BAD_TYPEDEF;
  for (unsigned i = 0; i < ntotal; i++)
    if (layout(atypes[i]) != FFI_OK)
      return FFI_BAD_TYPEDEF;
  cif->abi = abi;
  cif->nargs = ntotal;
  cif->arg_types = atypes;
  cif->rtype = rtype;
  cif->bytes = variadic ? nfixed : 0;
  enum pass result = classify(rtype);
  unsigned words = result == PASS_MEMORY ? 1 : 0;
  unsigned wide = 0;
  int callable = result != PASS_UNKNOWN;
  for (unsigned i = 0; i < nfixed; i++) {
    enum pass p = classify(atypes[i]);
    if (p == PASS_I32 || p == PASS_MEMORY)
      words++;
    else if (p == PASS_I64)
      wide++;
    else if (p != PASS_NONE)
      callable = 0;
  }
  if (variadic) {
    words++; /* the buffer's address */
    for (unsigned i = nfixed; i < ntotal; i++)
      if (classify(atypes[i]) == PASS_UNKNOWN)
        callable = 0;
  }
  if (wide == 0)
    callable = callable && words <= MAX_WORDS;
  else
    callable = callable && wide == 1 && words + 1 <= MAX_WIDE_ARGS;
  cif->flags = (unsigned)result | (callable ? CALLABLE : 0) | (variadic ? VARIADIC : 0) |
               (wide ? WIDE : 0);
  return FFI_OK;
}

ffi_status ffi_prep_cif(ffi_cif *cif, ffi_abi abi, unsigned int nargs, ffi_type *rtype,
                        ffi_type **atypes) {
  return prep(cif, abi, nargs, nargs, rtype, atypes, 0);
}

ffi_status ffi_prep_cif_var(ffi_cif *cif, ffi_abi abi, unsigned int nfixedargs,
                            unsigned int ntotalargs, ffi_type *rtype, ffi_type **atypes) {
  if (nfixedargs > ntotalargs)
    return FFI_BAD_ARGTYPE;
  return prep(cif, abi, nfixedargs, ntotalargs, rtype, atypes, 1);
}

ffi_status ffi_get_struct_offsets(ffi_abi abi, ffi_type *struct_type, size_t *offsets) {
  if (abi <= FFI_FIRST_ABI || abi >= FFI_LAST_ABI)
    return FFI_BAD_ABI;
  if (struct_type == NULL || struct_type->type != FFI_TYPE_STRUCT)
    return FFI_BAD_TYPEDEF;
  if (layout(struct_type) != FFI_OK)
    return FFI_BAD_TYPEDEF;
  size_t at = 0;
  for (size_t i = 0; struct_type->elements[i]; i++) {
    ffi_type *e = struct_type->elements[i];
    at = align_up(at, e->alignment);
    if (offsets)
      offsets[i] = at;
    at += e->size;
  }
  return FFI_OK;
}

/* An argument's 32-bit word, extended as the caller must. */
static uint32_t word(ffi_type *t, void *v) {
  if (t->type == FFI_TYPE_STRUCT) {
    ffi_type *one = single_element(t);
    return one != NULL ? word(one, v) : 0;
  }
  switch (t->type) {
  case FFI_TYPE_UINT8:
    return *(uint8_t *)v;
  case FFI_TYPE_SINT8:
    return (uint32_t)(int32_t) * (int8_t *)v;
  case FFI_TYPE_UINT16:
    return *(uint16_t *)v;
  case FFI_TYPE_SINT16:
    return (uint32_t)(int32_t) * (int16_t *)v;
  default:
    return *(uint32_t *)v;
  }
}

static const char *type_name(ffi_type *t) {
  switch (t->type) {
  case FFI_TYPE_VOID: return "void";
  case FFI_TYPE_INT: return "int";
  case FFI_TYPE_FLOAT: return "float";
  case FFI_TYPE_DOUBLE: return "double";
  case FFI_TYPE_LONGDOUBLE: return "long double";
  case FFI_TYPE_UINT8: return "uint8_t";
  case FFI_TYPE_SINT8: return "int8_t";
  case FFI_TYPE_UINT16: return "uint16_t";
  case FFI_TYPE_SINT16: return "int16_t";
  case FFI_TYPE_UINT32: return "uint32_t";
  case FFI_TYPE_SINT32: return "int32_t";
  case FFI_TYPE_UINT64: return "uint64_t";
  case FFI_TYPE_SINT64: return "int64_t";
  case FFI_TYPE_STRUCT: return "struct";
  case FFI_TYPE_POINTER: return "pointer";
  default: return "complex";
  }
}

static void unsupported(ffi_cif *cif) {
  char signature[160];
  size_t at = (size_t)snprintf(signature, sizeof signature, "%s (", type_name(cif->rtype));
  for (unsigned i = 0; i < cif->nargs && at < sizeof signature; i++)
    at += (size_t)snprintf(signature + at, sizeof signature - at, "%s%s", i ? ", " : "",
                           type_name(cif->arg_types[i]));
  if (at < sizeof signature)
    snprintf(signature + at, sizeof signature - at, ")");
  char message[512];
  snprintf(message, sizeof message,
           "cannot call a C function of type %s through a pointer in the eryx "
           "sandbox: its libffi (WASI has no real one) calls functions whose "
           "arguments are integers of up to 32 bits, pointers or structs, at "
           "most %d, or those and one 64-bit integer, at most %d in all; "
           "declare the function in cffi's API mode (ffi.set_source) so the "
           "call is compiled",
           signature, MAX_WORDS, MAX_WIDE_ARGS);
  int gil = PyGILState_Ensure();
  PyErr_SetString(PyExc_NotImplementedError, message);
  PyGILState_Release(gil);
}

#define T0 void
#define T1 uint32_t
#define T2 T1, uint32_t
#define T3 T2, uint32_t
#define T4 T3, uint32_t
#define T5 T4, uint32_t
#define T6 T5, uint32_t
#define T7 T6, uint32_t
#define T8 T7, uint32_t
#define V0
#define V1 w[0]
#define V2 V1, w[1]
#define V3 V2, w[2]
#define V4 V3, w[3]
#define V5 V4, w[4]
#define V6 V5, w[5]
#define V7 V6, w[6]
#define V8 V7, w[7]
/* Calls fn as `R fn(uint32_t x n)` for the n in `count`, storing into r. */
#define CALL_AS(R, r)                                                          \
  switch (count) {                                                             \
  case 0: r ((R(*)(T0))fn)(V0); break;                                         \
  case 1: r ((R(*)(T1))fn)(V1); break;                                         \
  case 2: r ((R(*)(T2))fn)(V2); break;                                         \
  case 3: r ((R(*)(T3))fn)(V3); break;                                         \
  case 4: r ((R(*)(T4))fn)(V4); break;                                         \
  case 5: r ((R(*)(T5))fn)(V5); break;                                         \
  case 6: r ((R(*)(T6))fn)(V6); break;                                         \
  case 7: r ((R(*)(T7))fn)(V7); break;                                         \
  default: r ((R(*)(T8))fn)(V8); break;                                        \
  }

/* Calls fn with the one 64-bit argument x at position `at` of `count`
   arguments, the 32-bit words w around it (case 8 * count + at). */
#define U uint32_t
#define L uint64_t
#define CALL_WIDE(R, r)                                                        \
  switch (8 * count + at) {                                                    \
  case 8: r ((R(*)(L))fn)(x); break;                                           \
  case 16: r ((R(*)(L, U))fn)(x, w[0]); break;                                 \
  case 17: r ((R(*)(U, L))fn)(w[0], x); break;                                 \
  case 24: r ((R(*)(L, U, U))fn)(x, w[0], w[1]); break;                        \
  case 25: r ((R(*)(U, L, U))fn)(w[0], x, w[1]); break;                        \
  case 26: r ((R(*)(U, U, L))fn)(w[0], w[1], x); break;                        \
  case 32: r ((R(*)(L, U, U, U))fn)(x, w[0], w[1], w[2]); break;               \
  case 33: r ((R(*)(U, L, U, U))fn)(w[0], x, w[1], w[2]); break;               \
  case 34: r ((R(*)(U, U, L, U))fn)(w[0], w[1], x, w[2]); break;               \
  case 35: r ((R(*)(U, U, U, L))fn)(w[0], w[1], w[2], x); break;               \
  case 40: r ((R(*)(L, U, U, U, U))fn)(x, w[0], w[1], w[2], w[3]); break;      \
  case 41: r ((R(*)(U, L, U, U, U))fn)(w[0], x, w[1], w[2], w[3]); break;      \
  case 42: r ((R(*)(U, U, L, U, U))fn)(w[0], w[1], x, w[2], w[3]); break;      \
  case 43: r ((R(*)(U, U, U, L, U))fn)(w[0], w[1], w[2], x, w[3]); break;      \
  case 44: r ((R(*)(U, U, U, U, L))fn)(w[0], w[1], w[2], w[3], x); break;      \
  case 48: r ((R(*)(L, U, U, U, U, U))fn)(x, w[0], w[1], w[2], w[3], w[4]); break; \
  case 49: r ((R(*)(U, L, U, U, U, U))fn)(w[0], x, w[1], w[2], w[3], w[4]); break; \
  case 50: r ((R(*)(U, U, L, U, U, U))fn)(w[0], w[1], x, w[2], w[3], w[4]); break; \
  case 51: r ((R(*)(U, U, U, L, U, U))fn)(w[0], w[1], w[2], x, w[3], w[4]); break; \
  case 52: r ((R(*)(U, U, U, U, L, U))fn)(w[0], w[1], w[2], w[3], x, w[4]); break; \
  case 53: r ((R(*)(U, U, U, U, U, L))fn)(w[0], w[1], w[2], w[3], w[4], x); break; \
  default: break;                                                              \
  }
/* Either call, as the cif says. */
#define CALL(R, r)                                                             \
  if (cif->flags & WIDE) {                                                     \
    CALL_WIDE(R, r)                                                            \
  } else {                                                                     \
    CALL_AS(R, r)                                                              \
  }

void ffi_call(ffi_cif *cif, void (*fn)(void), void *rvalue, void **avalue) {
  enum pass result = (enum pass)(cif->flags & 0xffu);
  if (!(cif->flags & CALLABLE)) {
    if (rvalue != NULL && cif->rtype->size > 0)
      memset(rvalue, 0, cif->rtype->size);
    unsupported(cif);
    return;
  }
  unsigned nfixed = (cif->flags & VARIADIC) ? cif->bytes : cif->nargs;
  uint32_t w[MAX_WORDS];
  unsigned count = 0;
  /* The 64-bit argument of a WIDE call, and its position. */
  uint64_t x = 0;
  unsigned at = 0;
  /* Copies of structs passed by value, and the variadic buffer. */
  size_t scratch = 0;
  for (unsigned i = 0; i < cif->nargs; i++)
    scratch += align_up(cif->arg_types[i]->size, 16) + 16;
  unsigned char *space = __builtin_alloca(scratch + 16);
  size_t used = 0;
  if (result == PASS_MEMORY)
    w[count++] = (uint32_t)(uintptr_t)rvalue;
  for (unsigned i = 0; i < nfixed; i++) {
    ffi_type *t = cif->arg_types[i];
    switch (classify(t)) {
    case PASS_NONE:
      break;
    case PASS_I64:
      memcpy(&x, avalue[i], sizeof x);
      at = count;
      break;
    case PASS_MEMORY: {
      used = align_up(used, t->alignment > 16 ? 16 : t->alignment);
      memcpy(space + used, avalue[i], t->size);
      w[count++] = (uint32_t)(uintptr_t)(space + used);
      used += t->size;
      break;
    }
    default:
      w[count++] = word(t, avalue[i]);
    }
  }
  if (cif->flags & VARIADIC) {
    /* Each variadic value at its alignment; structs by value too (clang
       copies them into the buffer). */
    used = align_up(used, 16);
    unsigned char *buffer = space + used;
    size_t at = 0;
    for (unsigned i = nfixed; i < cif->nargs; i++) {
      ffi_type *t = cif->arg_types[i];
      at = align_up(at, t->alignment);
      memcpy(buffer + at, avalue[i], t->size);
      at += t->size;
    }
    w[count++] = (uint32_t)(uintptr_t)buffer;
  }
  if (cif->flags & WIDE)
    count++; /* the 64-bit argument is one of them */
  switch (result) {
  case PASS_NONE:
  case PASS_MEMORY:
    CALL(void, );
    break;
  case PASS_I32: {
    uint32_t r = 0;
    CALL(uint32_t, r =);
    if (cif->rtype->type == FFI_TYPE_STRUCT)
      memcpy(rvalue, &r, cif->rtype->size);
    else
      *(ffi_arg *)rvalue = r;
    break;
  }
  case PASS_I64: {
    uint64_t r = 0;
    CALL(uint64_t, r =);
    memcpy(rvalue, &r, sizeof r);
    break;
  }
  case PASS_F32: {
    float r = 0;
    CALL(float, r =);
    memcpy(rvalue, &r, sizeof r);
    break;
  }
  case PASS_F64: {
    double r = 0;
    CALL(double, r =);
    memcpy(rvalue, &r, sizeof r);
    break;
  }
  default:
    break;
  }
}

/* Closures need code made at run time; wasm has none. */
void *ffi_closure_alloc(size_t size, void **code) {
  (void)size;
  if (code)
    *code = NULL;
  return NULL;
}

void ffi_closure_free(void *closure) { (void)closure; }

ffi_status ffi_prep_closure_loc(ffi_closure *closure, ffi_cif *cif,
                                void (*fun)(ffi_cif *, void *, void **, void *),
                                void *user_data, void *codeloc) {
  (void)closure, (void)cif, (void)fun, (void)user_data, (void)codeloc;
  return FFI_BAD_ABI;
}

ffi_status ffi_prep_closure(ffi_closure *closure, ffi_cif *cif,
                            void (*fun)(ffi_cif *, void *, void **, void *),
                            void *user_data) {
  return ffi_prep_closure_loc(closure, cif, fun, user_data, NULL);
}
