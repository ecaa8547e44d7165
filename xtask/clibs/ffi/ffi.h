/* eryx's libffi for wasm32-wasi: the libffi API that cffi's _cffi_backend
   compiles against, for the guest.

   Written for eryx (not libffi's code). libffi has no WASI port: in wasm a
   call through a function pointer must name the callee's exact type at
   compile time, and code cannot be generated at run time. What works:

   - describing types and call interfaces (ffi_prep_cif, struct layout):
     everything cffi's API mode needs, whose calls are compiled C;
   - ffi_call for functions whose arguments are all 32-bit integers or
     pointers in wasm's C ABI (up to 8 of them), or those and one 64-bit
     integer anywhere among them (up to 6 in all: pycryptodome's
     `monty_pow(..., uint64_t seed)`), returning nothing, an integer, a
     pointer, a float or a double;
   - nothing else: another ffi_call raises a Python exception
     (NotImplementedError) naming the signature, and closures
     (ffi.callback) are refused by ffi_prep_closure. */
#ifndef ERYX_FFI_H
#define ERYX_FFI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FFI_TYPE_VOID 0
#define FFI_TYPE_INT 1
#define FFI_TYPE_FLOAT 2
#define FFI_TYPE_DOUBLE 3
#define FFI_TYPE_LONGDOUBLE 4
#define FFI_TYPE_UINT8 5
#define FFI_TYPE_SINT8 6
#define FFI_TYPE_UINT16 7
#define FFI_TYPE_SINT16 8
#define FFI_TYPE_UINT32 9
#define FFI_TYPE_SINT32 10
#define FFI_TYPE_UINT64 11
#define FFI_TYPE_SINT64 12
#define FFI_TYPE_STRUCT 13
#define FFI_TYPE_POINTER 14
#define FFI_TYPE_COMPLEX 15
#define FFI_TYPE_LAST FFI_TYPE_COMPLEX

#define FFI_CLOSURES 0
#define FFI_GO_CLOSURES 0
#define FFI_NATIVE_RAW_API 0
#define FFI_TRAMPOLINE_SIZE 0

typedef enum ffi_abi {
  FFI_FIRST_ABI = 0,
  FFI_WASM32,
  FFI_LAST_ABI,
  FFI_DEFAULT_ABI = FFI_WASM32
} ffi_abi;

/* wasm has one calling convention. */
#define FFI_STDCALL FFI_DEFAULT_ABI

typedef enum {
  FFI_OK = 0,
  FFI_BAD_TYPEDEF,
  FFI_BAD_ABI,
  FFI_BAD_ARGTYPE
} ffi_status;

typedef struct _ffi_type {
  size_t size;
  unsigned short alignment;
  unsigned short type;
  struct _ffi_type **elements;
} ffi_type;

/* Values libffi widens integer results to. */
typedef unsigned long ffi_arg;
typedef signed long ffi_sarg;

typedef struct {
  ffi_abi abi;
  unsigned nargs;
  ffi_type **arg_types;
  ffi_type *rtype;
  unsigned bytes;
  /* eryx: how ffi_call can make the call (see ffi.c). */
  unsigned flags;
} ffi_cif;

extern ffi_type ffi_type_void;
extern ffi_type ffi_type_uint8;
extern ffi_type ffi_type_sint8;
extern ffi_type ffi_type_uint16;
extern ffi_type ffi_type_sint16;
extern ffi_type ffi_type_uint32;
extern ffi_type ffi_type_sint32;
extern ffi_type ffi_type_uint64;
extern ffi_type ffi_type_sint64;
extern ffi_type ffi_type_float;
extern ffi_type ffi_type_double;
extern ffi_type ffi_type_longdouble;
extern ffi_type ffi_type_pointer;
extern ffi_type ffi_type_complex_float;
extern ffi_type ffi_type_complex_double;

#define ffi_type_uchar ffi_type_uint8
#define ffi_type_schar ffi_type_sint8
#define ffi_type_ushort ffi_type_uint16
#define ffi_type_sshort ffi_type_sint16
#define ffi_type_uint ffi_type_uint32
#define ffi_type_sint ffi_type_sint32
#define ffi_type_ulong ffi_type_uint32
#define ffi_type_slong ffi_type_sint32

typedef struct {
  ffi_cif *cif;
  void (*fun)(ffi_cif *, void *, void **, void *);
  void *user_data;
} ffi_closure;

ffi_status ffi_prep_cif(ffi_cif *cif, ffi_abi abi, unsigned int nargs,
                        ffi_type *rtype, ffi_type **atypes);
ffi_status ffi_prep_cif_var(ffi_cif *cif, ffi_abi abi, unsigned int nfixedargs,
                            unsigned int ntotalargs, ffi_type *rtype,
                            ffi_type **atypes);
void ffi_call(ffi_cif *cif, void (*fn)(void), void *rvalue, void **avalue);
ffi_status ffi_get_struct_offsets(ffi_abi abi, ffi_type *struct_type,
                                  size_t *offsets);

void *ffi_closure_alloc(size_t size, void **code);
void ffi_closure_free(void *closure);
ffi_status ffi_prep_closure(ffi_closure *closure, ffi_cif *cif,
                            void (*fun)(ffi_cif *, void *, void **, void *),
                            void *user_data);
ffi_status ffi_prep_closure_loc(ffi_closure *closure, ffi_cif *cif,
                                void (*fun)(ffi_cif *, void *, void **, void *),
                                void *user_data, void *codeloc);

#ifdef __cplusplus
}
#endif

#endif /* ERYX_FFI_H */
