/* `_eryx_kdf` for the eryx guest: `hashlib.pbkdf2_hmac` and `hashlib.scrypt`,
 * which CPython takes from OpenSSL's `_hashlib` (the WASI build of CPython
 * has no OpenSSL). `cargo xtask dist` appends an import of them to the
 * bundle's `hashlib.py`. Written for eryx from RFC 8018 (PBKDF2), RFC 2104
 * (HMAC), RFC 7914 (scrypt) and FIPS 180-4 (SHA-1, SHA-2; the constants
 * below are the fractional parts of roots of primes the standard defines,
 * generated with integer arithmetic). SHA-1 and the SHA-2 family run here;
 * any other `hashlib` algorithm (md5, sha3_*, blake2*) goes through its
 * `hashlib` object. Arguments and errors follow CPython's documented
 * `pbkdf2_hmac(hash_name, password, salt, iterations, dklen=None)` and
 * `scrypt(password, *, salt, n, r, p, maxmem=0, dklen=64)`, with OpenSSL's
 * default scrypt memory cap (32 MiB) when `maxmem` is 0. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* ---- SHA-1 and SHA-2 (FIPS 180-4) ------------------------------------- */

static const uint32_t K256[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u,
    0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u,
    0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu,
    0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u,
    0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u,
    0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u,
    0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};
static const uint64_t K512[80] = {
    0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
    0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
    0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
    0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
    0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
    0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
    0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
    0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
    0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
    0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
    0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
    0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
    0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
    0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
    0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
    0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
    0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
    0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
    0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
    0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
};
static const uint32_t IV256[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};
static const uint32_t IV224[8] = {
    0xc1059ed8u, 0x367cd507u, 0x3070dd17u, 0xf70e5939u,
    0xffc00b31u, 0x68581511u, 0x64f98fa7u, 0xbefa4fa4u,
};
static const uint64_t IV512[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};
static const uint64_t IV384[8] = {
    0xcbbb9d5dc1059ed8ULL, 0x629a292a367cd507ULL, 0x9159015a3070dd17ULL, 0x152fecd8f70e5939ULL,
    0x67332667ffc00b31ULL, 0x8eb44a8768581511ULL, 0xdb0c2e0d64f98fa7ULL, 0x47b5481dbefa4fa4ULL,
};

typedef struct hash_algo hash_algo;

typedef struct {
    const hash_algo *algo;
    union {
        uint32_t w32[8];
        uint64_t w64[8];
    } h;
    uint64_t length; /* bytes absorbed */
    uint8_t buf[128];
    size_t used;
} hash_ctx;

struct hash_algo {
    const char *name;
    size_t block;  /* 64 or 128 */
    size_t digest; /* output bytes */
    void (*init)(hash_ctx *);
    void (*compress)(hash_ctx *, const uint8_t *);
};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define ROL32(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define ROR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

static uint32_t
load32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t
load64(const uint8_t *p)
{
    return ((uint64_t)load32(p) << 32) | load32(p + 4);
}

static void
sha1_compress(hash_ctx *c, const uint8_t *block)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++) {
        w[i] = load32(block + 4 * i);
    }
    for (int i = 16; i < 80; i++) {
        w[i] = ROL32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    uint32_t *h = c->h.w32;
    uint32_t a = h[0], b = h[1], cc = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & cc) | (~b & d);
            k = 0x5a827999u;
        } else if (i < 40) {
            f = b ^ cc ^ d;
            k = 0x6ed9eba1u;
        } else if (i < 60) {
            f = (b & cc) | (b & d) | (cc & d);
            k = 0x8f1bbcdcu;
        } else {
            f = b ^ cc ^ d;
            k = 0xca62c1d6u;
        }
        uint32_t t = ROL32(a, 5) + f + e + k + w[i];
        e = d;
        d = cc;
        cc = ROL32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += cc;
    h[3] += d;
    h[4] += e;
}

static void
sha256_compress(hash_ctx *c, const uint8_t *block)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = load32(block + 4 * i);
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t *h = c->h.w32;
    uint32_t a = h[0], b = h[1], cc = h[2], d = h[3], e = h[4], f = h[5], g = h[6],
             hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + s1 + ch + K256[i] + w[i];
        uint32_t s0 = ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22);
        uint32_t maj = (a & b) ^ (a & cc) ^ (b & cc);
        uint32_t t2 = s0 + maj;
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = cc;
        cc = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += cc;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

static void
sha512_compress(hash_ctx *c, const uint8_t *block)
{
    uint64_t w[80];
    for (int i = 0; i < 16; i++) {
        w[i] = load64(block + 8 * i);
    }
    for (int i = 16; i < 80; i++) {
        uint64_t s0 = ROR64(w[i - 15], 1) ^ ROR64(w[i - 15], 8) ^ (w[i - 15] >> 7);
        uint64_t s1 = ROR64(w[i - 2], 19) ^ ROR64(w[i - 2], 61) ^ (w[i - 2] >> 6);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint64_t *h = c->h.w64;
    uint64_t a = h[0], b = h[1], cc = h[2], d = h[3], e = h[4], f = h[5], g = h[6],
             hh = h[7];
    for (int i = 0; i < 80; i++) {
        uint64_t s1 = ROR64(e, 14) ^ ROR64(e, 18) ^ ROR64(e, 41);
        uint64_t ch = (e & f) ^ (~e & g);
        uint64_t t1 = hh + s1 + ch + K512[i] + w[i];
        uint64_t s0 = ROR64(a, 28) ^ ROR64(a, 34) ^ ROR64(a, 39);
        uint64_t maj = (a & b) ^ (a & cc) ^ (b & cc);
        uint64_t t2 = s0 + maj;
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = cc;
        cc = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += cc;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

static void
sha1_init(hash_ctx *c)
{
    static const uint32_t iv[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u,
                                   0xc3d2e1f0u};
    memcpy(c->h.w32, iv, sizeof(iv));
}

static void
sha224_init(hash_ctx *c)
{
    memcpy(c->h.w32, IV224, sizeof(IV224));
}

static void
sha256_init(hash_ctx *c)
{
    memcpy(c->h.w32, IV256, sizeof(IV256));
}

static void
sha384_init(hash_ctx *c)
{
    memcpy(c->h.w64, IV384, sizeof(IV384));
}

static void
sha512_init(hash_ctx *c)
{
    memcpy(c->h.w64, IV512, sizeof(IV512));
}

static const hash_algo ALGOS[] = {
    {"sha1", 64, 20, sha1_init, sha1_compress},
    {"sha224", 64, 28, sha224_init, sha256_compress},
    {"sha256", 64, 32, sha256_init, sha256_compress},
    {"sha384", 128, 48, sha384_init, sha512_compress},
    {"sha512", 128, 64, sha512_init, sha512_compress},
};

static void
hash_start(hash_ctx *c, const hash_algo *a)
{
    memset(c, 0, sizeof(*c));
    c->algo = a;
    a->init(c);
}

static void
hash_update(hash_ctx *c, const uint8_t *p, size_t n)
{
    size_t block = c->algo->block;
    if (n == 0) {
        return;
    }
    c->length += n;
    if (c->used > 0) {
        size_t take = block - c->used < n ? block - c->used : n;
        memcpy(c->buf + c->used, p, take);
        c->used += take;
        p += take;
        n -= take;
        if (c->used < block) {
            return;
        }
        c->algo->compress(c, c->buf);
        c->used = 0;
    }
    while (n >= block) {
        c->algo->compress(c, p);
        p += block;
        n -= block;
    }
    memcpy(c->buf, p, n);
    c->used = n;
}

static void
hash_final(hash_ctx *c, uint8_t *out)
{
    size_t block = c->algo->block;
    size_t lenbytes = block == 64 ? 8 : 16;
    uint64_t bits = c->length * 8;
    c->buf[c->used++] = 0x80;
    if (c->used > block - lenbytes) {
        memset(c->buf + c->used, 0, block - c->used);
        c->algo->compress(c, c->buf);
        c->used = 0;
    }
    memset(c->buf + c->used, 0, block - c->used);
    for (int i = 0; i < 8; i++) {
        c->buf[block - 1 - i] = (uint8_t)(bits >> (8 * i));
    }
    c->algo->compress(c, c->buf);
    for (size_t i = 0; i < c->algo->digest; i++) {
        out[i] = block == 64 ? (uint8_t)(c->h.w32[i / 4] >> (24 - 8 * (i % 4)))
                             : (uint8_t)(c->h.w64[i / 8] >> (56 - 8 * (i % 8)));
    }
}

/* ---- HMAC and PBKDF2 -------------------------------------------------- */

/* HMAC's two keyed states (RFC 2104), ready to absorb a message. */
typedef struct {
    hash_ctx inner, outer;
} hmac_key;

static void
hmac_setup(hmac_key *k, const hash_algo *a, const uint8_t *key, size_t len)
{
    uint8_t block[128], hashed[64];
    if (len > a->block) {
        hash_ctx c;
        hash_start(&c, a);
        hash_update(&c, key, len);
        hash_final(&c, hashed);
        key = hashed;
        len = a->digest;
    }
    memset(block, 0, sizeof(block));
    memcpy(block, key, len);
    for (size_t i = 0; i < a->block; i++) {
        block[i] ^= 0x36;
    }
    hash_start(&k->inner, a);
    hash_update(&k->inner, block, a->block);
    for (size_t i = 0; i < a->block; i++) {
        block[i] ^= 0x36 ^ 0x5c;
    }
    hash_start(&k->outer, a);
    hash_update(&k->outer, block, a->block);
}

/* HMAC of `head` followed by `tail` (either may be empty). */
static void
hmac_run(const hmac_key *k, const uint8_t *head, size_t head_len, const uint8_t *tail,
         size_t tail_len, uint8_t *out)
{
    hash_ctx c = k->inner;
    hash_update(&c, head, head_len);
    hash_update(&c, tail, tail_len);
    uint8_t inner[64];
    hash_final(&c, inner);
    c = k->outer;
    hash_update(&c, inner, k->inner.algo->digest);
    hash_final(&c, out);
}

/* PBKDF2-HMAC (RFC 8018, section 5.2) with a native hash. */
static void
pbkdf2_native(const hash_algo *a, const uint8_t *pw, size_t pw_len, const uint8_t *salt,
              size_t salt_len, unsigned long iterations, uint8_t *out, size_t dklen)
{
    hmac_key key;
    hmac_setup(&key, a, pw, pw_len);
    size_t hlen = a->digest;
    uint8_t u[64], t[64], counter[4];
    for (uint32_t block = 1; dklen > 0; block++) {
        counter[0] = (uint8_t)(block >> 24);
        counter[1] = (uint8_t)(block >> 16);
        counter[2] = (uint8_t)(block >> 8);
        counter[3] = (uint8_t)block;
        hmac_run(&key, salt, salt_len, counter, 4, u);
        memcpy(t, u, hlen);
        for (unsigned long i = 1; i < iterations; i++) {
            hmac_run(&key, u, hlen, NULL, 0, u);
            for (size_t j = 0; j < hlen; j++) {
                t[j] ^= u[j];
            }
        }
        size_t take = dklen < hlen ? dklen : hlen;
        memcpy(out, t, take);
        out += take;
        dklen -= take;
    }
}

/* ---- PBKDF2 through a hashlib object (any other algorithm) ------------ */

/* `method(obj, arg)` (arg may be NULL). */
static PyObject *
call1(PyObject *obj, const char *method, PyObject *arg)
{
    return arg == NULL ? PyObject_CallMethod(obj, method, NULL)
                       : PyObject_CallMethod(obj, method, "O", arg);
}

/* A keyed copy: `base.copy()` updated with `data`, then digested. */
static PyObject *
digest_of(PyObject *base, PyObject *data)
{
    PyObject *h = call1(base, "copy", NULL);
    if (h == NULL) {
        return NULL;
    }
    PyObject *r = call1(h, "update", data);
    if (r == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    Py_DECREF(r);
    PyObject *d = call1(h, "digest", NULL);
    Py_DECREF(h);
    return d;
}

static PyObject *
hmac_generic(PyObject *inner, PyObject *outer, PyObject *msg)
{
    PyObject *in = digest_of(inner, msg);
    if (in == NULL) {
        return NULL;
    }
    PyObject *out = digest_of(outer, in);
    Py_DECREF(in);
    return out;
}

/* PBKDF2 with `hashlib.new(name)`; `out` has `dklen` bytes. */
static int
pbkdf2_generic(PyObject *name, const uint8_t *pw, Py_ssize_t pw_len, const uint8_t *salt,
               Py_ssize_t salt_len, unsigned long iterations, uint8_t *out, size_t dklen)
{
    int ok = -1;
    PyObject *hashlib = NULL, *inner = NULL, *outer = NULL, *key = NULL, *pad = NULL;
    PyObject *u = NULL, *msg = NULL;
    uint8_t *t = NULL;
    hashlib = PyImport_ImportModule("hashlib");
    if (hashlib == NULL) {
        goto done;
    }
    inner = PyObject_CallMethod(hashlib, "new", "O", name);
    if (inner == NULL) {
        goto done;
    }
    PyObject *attr = PyObject_GetAttrString(inner, "block_size");
    Py_ssize_t block = attr ? PyLong_AsSsize_t(attr) : -1;
    Py_XDECREF(attr);
    attr = PyObject_GetAttrString(inner, "digest_size");
    Py_ssize_t hlen = attr ? PyLong_AsSsize_t(attr) : -1;
    Py_XDECREF(attr);
    if (PyErr_Occurred()) {
        goto done;
    }
    if (block <= 0 || hlen <= 0) {
        /* shake_128/shake_256 have no fixed digest size. */
        PyErr_Format(PyExc_ValueError, "unsupported hash type %U for PBKDF2-HMAC", name);
        goto done;
    }
    if (pw_len > block) {
        PyObject *pwb = PyBytes_FromStringAndSize((const char *)pw, pw_len);
        PyObject *h = pwb ? PyObject_CallMethod(hashlib, "new", "OO", name, pwb) : NULL;
        Py_XDECREF(pwb);
        key = h ? call1(h, "digest", NULL) : NULL;
        Py_XDECREF(h);
    } else {
        key = PyBytes_FromStringAndSize((const char *)pw, pw_len);
    }
    if (key == NULL || (pad = PyBytes_FromStringAndSize(NULL, block)) == NULL) {
        goto done;
    }
    uint8_t *p = (uint8_t *)PyBytes_AS_STRING(pad);
    Py_ssize_t klen = PyBytes_GET_SIZE(key);
    for (int round = 0; round < 2; round++) {
        for (Py_ssize_t i = 0; i < block; i++) {
            uint8_t k = i < klen ? (uint8_t)PyBytes_AS_STRING(key)[i] : 0;
            p[i] = k ^ (round == 0 ? 0x36 : 0x5c);
        }
        if (round == 1) {
            outer = PyObject_CallMethod(hashlib, "new", "O", name);
        }
        PyObject *h = round == 0 ? inner : outer;
        if (h == NULL) {
            goto done;
        }
        PyObject *r = call1(h, "update", pad);
        if (r == NULL) {
            goto done;
        }
        Py_DECREF(r);
    }
    t = PyMem_Malloc((size_t)hlen);
    msg = PyBytes_FromStringAndSize(NULL, salt_len + 4);
    if (t == NULL || msg == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(PyBytes_AS_STRING(msg), salt, (size_t)salt_len);
    for (uint32_t blockno = 1; dklen > 0; blockno++) {
        uint8_t *c = (uint8_t *)PyBytes_AS_STRING(msg) + salt_len;
        c[0] = (uint8_t)(blockno >> 24);
        c[1] = (uint8_t)(blockno >> 16);
        c[2] = (uint8_t)(blockno >> 8);
        c[3] = (uint8_t)blockno;
        Py_XSETREF(u, hmac_generic(inner, outer, msg));
        if (u == NULL) {
            goto done;
        }
        memcpy(t, PyBytes_AS_STRING(u), (size_t)hlen);
        for (unsigned long i = 1; i < iterations; i++) {
            Py_SETREF(u, hmac_generic(inner, outer, u));
            if (u == NULL) {
                goto done;
            }
            for (Py_ssize_t j = 0; j < hlen; j++) {
                t[j] ^= (uint8_t)PyBytes_AS_STRING(u)[j];
            }
        }
        size_t take = dklen < (size_t)hlen ? dklen : (size_t)hlen;
        memcpy(out, t, take);
        out += take;
        dklen -= take;
    }
    ok = 0;
done:
    PyMem_Free(t);
    Py_XDECREF(hashlib);
    Py_XDECREF(inner);
    Py_XDECREF(outer);
    Py_XDECREF(key);
    Py_XDECREF(pad);
    Py_XDECREF(u);
    Py_XDECREF(msg);
    return ok;
}

/* The native algorithm named `name` (as OpenSSL names them, any case,
 * with or without a dash: `sha256`, `SHA-256`), or NULL. */
static const hash_algo *
native_algo(const char *name)
{
    char norm[16];
    size_t n = 0;
    for (const char *p = name; *p; p++) {
        if (*p == '-' || *p == '_') {
            continue;
        }
        if (n + 1 >= sizeof(norm)) {
            return NULL;
        }
        norm[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    }
    norm[n] = 0;
    for (size_t i = 0; i < sizeof(ALGOS) / sizeof(ALGOS[0]); i++) {
        if (strcmp(norm, ALGOS[i].name) == 0) {
            return &ALGOS[i];
        }
    }
    return NULL;
}

static PyObject *
kdf_pbkdf2_hmac(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"hash_name", "password", "salt", "iterations", "dklen", NULL};
    PyObject *name, *dklen_obj = Py_None;
    Py_buffer pw, salt;
    long iterations;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Uy*y*l|O:pbkdf2_hmac", names, &name,
                                     &pw, &salt, &iterations, &dklen_obj)) {
        return NULL;
    }
    PyObject *result = NULL;
    const char *cname = PyUnicode_AsUTF8(name);
    const hash_algo *algo = cname ? native_algo(cname) : NULL;
    long dklen = -1;
    if (cname == NULL) {
        goto done;
    }
    if (iterations < 1) {
        PyErr_SetString(PyExc_ValueError, "iteration value must be greater than 0.");
        goto done;
    }
    if (dklen_obj != Py_None) {
        dklen = PyLong_AsLong(dklen_obj);
        if (dklen == -1 && PyErr_Occurred()) {
            goto done;
        }
        if (dklen < 1) {
            PyErr_SetString(PyExc_ValueError, "key length must be greater than 0.");
            goto done;
        }
    }
    if (algo != NULL) {
        if (dklen < 0) {
            dklen = (long)algo->digest;
        }
        result = PyBytes_FromStringAndSize(NULL, dklen);
        if (result != NULL) {
            pbkdf2_native(algo, pw.buf, (size_t)pw.len, salt.buf, (size_t)salt.len,
                          (unsigned long)iterations, (uint8_t *)PyBytes_AS_STRING(result),
                          (size_t)dklen);
        }
        goto done;
    }
    if (dklen < 0) {
        /* The generic path learns the digest size from the hash object. */
        PyObject *hashlib = PyImport_ImportModule("hashlib");
        PyObject *h = hashlib ? PyObject_CallMethod(hashlib, "new", "O", name) : NULL;
        Py_XDECREF(hashlib);
        PyObject *size = h ? PyObject_GetAttrString(h, "digest_size") : NULL;
        Py_XDECREF(h);
        dklen = size ? PyLong_AsLong(size) : -1;
        Py_XDECREF(size);
        if (dklen < 1) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_ValueError, "unsupported hash type %U for PBKDF2-HMAC",
                             name);
            }
            goto done;
        }
    }
    result = PyBytes_FromStringAndSize(NULL, dklen);
    if (result != NULL &&
        pbkdf2_generic(name, pw.buf, pw.len, salt.buf, salt.len, (unsigned long)iterations,
                       (uint8_t *)PyBytes_AS_STRING(result), (size_t)dklen) < 0) {
        Py_CLEAR(result);
    }
done:
    PyBuffer_Release(&pw);
    PyBuffer_Release(&salt);
    return result;
}

/* ---- scrypt (RFC 7914) ------------------------------------------------ */

static void
salsa20_8(uint32_t b[16])
{
    uint32_t x[16];
    memcpy(x, b, sizeof(x));
    for (int i = 0; i < 8; i += 2) {
#define QR(a, b_, c, d)                                                                 \
    x[b_] ^= ROL32(x[a] + x[d], 7);                                                     \
    x[c] ^= ROL32(x[b_] + x[a], 9);                                                     \
    x[d] ^= ROL32(x[c] + x[b_], 13);                                                    \
    x[a] ^= ROL32(x[d] + x[c], 18)
        QR(0, 4, 8, 12);
        QR(5, 9, 13, 1);
        QR(10, 14, 2, 6);
        QR(15, 3, 7, 11);
        QR(0, 1, 2, 3);
        QR(5, 6, 7, 4);
        QR(10, 11, 8, 9);
        QR(15, 12, 13, 14);
#undef QR
    }
    for (int i = 0; i < 16; i++) {
        b[i] += x[i];
    }
}

/* scryptBlockMix: `b` (2r 64-byte blocks, as words) into `y`. */
static void
block_mix(const uint32_t *b, uint32_t *y, size_t r)
{
    uint32_t x[16];
    memcpy(x, b + (2 * r - 1) * 16, 64);
    for (size_t i = 0; i < 2 * r; i++) {
        for (int j = 0; j < 16; j++) {
            x[j] ^= b[i * 16 + j];
        }
        salsa20_8(x);
        /* Even blocks to the first half, odd ones to the second. */
        memcpy(y + ((i & 1) * r + i / 2) * 16, x, 64);
    }
}

/* scryptROMix on `b` (128r bytes, little-endian words), with `v` holding
 * n * 32r words and `xy` 64r words. */
static void
ro_mix(uint8_t *b, size_t r, uint64_t n, uint32_t *v, uint32_t *xy)
{
    size_t words = 32 * r;
    uint32_t *x = xy, *y = xy + words;
    for (size_t i = 0; i < words; i++) {
        const uint8_t *p = b + 4 * i;
        x[i] = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
               ((uint32_t)p[3] << 24);
    }
    for (uint64_t i = 0; i < n; i++) {
        memcpy(v + i * words, x, words * 4);
        block_mix(x, y, r);
        memcpy(x, y, words * 4);
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t j = (x[(2 * r - 1) * 16] | ((uint64_t)x[(2 * r - 1) * 16 + 1] << 32)) & (n - 1);
        for (size_t k = 0; k < words; k++) {
            x[k] ^= v[j * words + k];
        }
        block_mix(x, y, r);
        memcpy(x, y, words * 4);
    }
    for (size_t i = 0; i < words; i++) {
        uint8_t *p = b + 4 * i;
        p[0] = (uint8_t)x[i];
        p[1] = (uint8_t)(x[i] >> 8);
        p[2] = (uint8_t)(x[i] >> 16);
        p[3] = (uint8_t)(x[i] >> 24);
    }
}

/* OpenSSL's cap on scrypt's memory when `maxmem` is 0. */
#define SCRYPT_DEFAULT_MAXMEM (32u * 1024 * 1024)

/* A positive C long from an argument (`what` names it in errors). */
static int
positive_long(PyObject *obj, const char *what, long *out)
{
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.200s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = PyLong_AsLong(obj);
    if (*out == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*out < 1) {
        PyErr_Format(PyExc_ValueError, "%s must be a positive integer", what);
        return -1;
    }
    return 0;
}

static PyObject *
kdf_scrypt(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"password", "salt", "n", "r", "p", "maxmem", "dklen", NULL};
    Py_buffer pw, salt = {0};
    PyObject *n_obj = NULL, *r_obj = NULL, *p_obj = NULL;
    long maxmem = 0, dklen = 64;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|$y*OOOll:scrypt", names, &pw, &salt,
                                     &n_obj, &r_obj, &p_obj, &maxmem, &dklen)) {
        return NULL;
    }
    PyObject *result = NULL;
    uint32_t *v = NULL, *xy = NULL;
    uint8_t *b = NULL;
    const char *missing = salt.obj == NULL ? "salt"
                          : n_obj == NULL  ? "n"
                          : r_obj == NULL  ? "r"
                          : p_obj == NULL  ? "p"
                                           : NULL;
    if (missing != NULL) {
        PyErr_Format(PyExc_TypeError, "scrypt() missing required keyword argument '%s'",
                     missing);
        goto done;
    }
    long n, r, p;
    if (positive_long(n_obj, "n", &n) < 0 || positive_long(r_obj, "r", &r) < 0 ||
        positive_long(p_obj, "p", &p) < 0) {
        goto done;
    }
    if (n < 2 || (n & (n - 1)) != 0) {
        PyErr_SetString(PyExc_ValueError, "n must be a power of 2 greater than 1.");
        goto done;
    }
    if (maxmem < 0 || maxmem > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "maxmem must be positive and smaller than %d",
                     INT_MAX);
        goto done;
    }
    if (dklen < 1 || dklen > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "dklen must be greater than 0 and smaller than %d",
                     INT_MAX);
        goto done;
    }
    /* RFC 7914: p <= (2^32 - 1) * 32 / (128 r) and n < 2^(128 r / 8). */
    uint64_t limit = maxmem == 0 ? SCRYPT_DEFAULT_MAXMEM : (uint64_t)maxmem;
    uint64_t need_b = (uint64_t)p * 128 * (uint64_t)r;
    uint64_t need_v = (uint64_t)128 * (uint64_t)r * ((uint64_t)n + 2);
    if ((uint64_t)r * (uint64_t)p >= (1u << 30) || (16 * r < 64 && ((uint64_t)n >> (16 * r)) != 0) ||
        need_b + need_v > limit || need_b + need_v > SIZE_MAX) {
        PyErr_SetString(PyExc_ValueError,
                        "Invalid parameter combination for n, r, p, maxmem: scrypt would "
                        "need more memory than maxmem allows (OpenSSL's 32 MiB when 0)");
        goto done;
    }
    b = PyMem_Malloc((size_t)need_b);
    v = PyMem_Malloc((size_t)(128 * (uint64_t)r * (uint64_t)n));
    xy = PyMem_Malloc((size_t)(256 * (uint64_t)r));
    if (b == NULL || v == NULL || xy == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const hash_algo *sha256 = native_algo("sha256");
    pbkdf2_native(sha256, pw.buf, (size_t)pw.len, salt.buf, (size_t)salt.len, 1, b,
                  (size_t)need_b);
    for (long i = 0; i < p; i++) {
        ro_mix(b + (size_t)i * 128 * (size_t)r, (size_t)r, (uint64_t)n, v, xy);
    }
    result = PyBytes_FromStringAndSize(NULL, dklen);
    if (result != NULL) {
        pbkdf2_native(sha256, pw.buf, (size_t)pw.len, b, (size_t)need_b, 1,
                      (uint8_t *)PyBytes_AS_STRING(result), (size_t)dklen);
    }
done:
    PyMem_Free(b);
    PyMem_Free(v);
    PyMem_Free(xy);
    PyBuffer_Release(&pw);
    if (salt.obj != NULL) {
        PyBuffer_Release(&salt);
    }
    return result;
}

/* ---- module ----------------------------------------------------------- */

static PyMethodDef kdf_functions[] = {
    {"pbkdf2_hmac", (PyCFunction)(void (*)(void))kdf_pbkdf2_hmac,
     METH_VARARGS | METH_KEYWORDS,
     "pbkdf2_hmac(hash_name, password, salt, iterations, dklen=None) -> bytes\n\n"
     "Password-based key derivation function 2 (PKCS #5 v2.0) with HMAC as its "
     "pseudorandom function."},
    {"scrypt", (PyCFunction)(void (*)(void))kdf_scrypt, METH_VARARGS | METH_KEYWORDS,
     "scrypt(password, *, salt, n, r, p, maxmem=0, dklen=64) -> bytes\n\n"
     "The scrypt password-based key derivation function (RFC 7914)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot kdf_slots[] = {
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, NULL},
};

static struct PyModuleDef kdf_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_eryx_kdf",
    .m_doc = "hashlib.pbkdf2_hmac and hashlib.scrypt without OpenSSL, built for eryx.",
    .m_size = 0,
    .m_methods = kdf_functions,
    .m_slots = kdf_slots,
};

PyMODINIT_FUNC
PyInit__eryx_kdf(void)
{
    return PyModuleDef_Init(&kdf_module);
}
