//! A small-object allocator for CPython's `PyMem_*` and `PyObject_*`
//! domains.
//!
//! CPython's WASI build is configured without pymalloc (`WITH_PYMALLOC` is
//! 0), so every object CPython makes and frees went through wasi-libc's
//! dlmalloc: `sum(range(10**7))`, which makes and frees an `int` per step,
//! spent about a third of its time in `malloc`/`free` and their wrappers;
//! compiling a cell about a sixth. This allocator takes the requests of up
//! to [`SMALL_MAX`] bytes, as pymalloc does natively: blocks of one size
//! class come from a 16 KiB pool of that class; a free block goes on its
//! pool's list and is the next one handed out. Larger requests go to libc.
//!
//! Pools come 16 at a time from one 256 KiB `malloc` of libc (an arena; the
//! pools are the 16 KiB-aligned stretches inside it). A pool whose blocks
//! are all free goes back to its arena for any class to reuse, and an arena
//! whose pools are all free goes back to libc at once, so memory freed by
//! small objects is available to large ones (a 100 MB `bytearray` after a
//! million strings were freed, in a 160 MiB sandbox: tested). Which pointers
//! are pool blocks is kept in a bitmap with one bit per 16 KiB of the 32-bit
//! address space (32 KiB), so a pointer from libc is told apart without
//! reading memory around it.
//!
//! It is installed at the end of start-up (see [`install`]): objects made
//! before are libc's and go back to libc when freed (the bitmap tells),
//! and a pre-initialised snapshot's objects stay packed as dlmalloc laid
//! them out, which is what keeps an idle sandbox small. The guest is
//! single-threaded and these domains are only used with the GIL held, so
//! the state needs no lock.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;

use eryx_cpython_sys as ffi;

/// log2 of a pool's size (and alignment).
const POOL_SHIFT: u32 = 14;
/// A pool's size: 16 KiB.
const POOL_SIZE: usize = 1 << POOL_SHIFT;
/// Block sizes are multiples of this; it is also their alignment (that of
/// `max_align_t` on wasm32).
const GRAIN: usize = 16;
/// The largest request served from pools (pymalloc's limit).
const SMALL_MAX: usize = 512;
/// Size classes: 16, 32, ... 512 bytes.
const CLASSES: usize = SMALL_MAX / GRAIN;
/// Where a pool's first block starts: its header rounded up to [`GRAIN`].
const HEADER: usize = core::mem::size_of::<Pool>().next_multiple_of(GRAIN);
/// What an arena takes from libc: room for 16 pools, 15 if libc's block
/// does not start on a pool boundary.
const ARENA_SIZE: usize = 16 * POOL_SIZE;
/// Bitmap words covering the 32-bit address space, one bit per pool.
const MAP_WORDS: usize = (1 << (32 - POOL_SHIFT)) / 32;

/// The header at the start of every pool.
#[repr(C)]
struct Pool {
    /// Freed blocks, each holding the next one's address.
    free: *mut Free,
    /// The neighbours in its class's list of pools with room, or in its
    /// arena's list of free pools (`next` only).
    next: *mut Pool,
    prev: *mut Pool,
    /// The arena it is in.
    arena: *mut Arena,
    /// Offset of the first block never handed out.
    bump: u32,
    /// Blocks handed out and not freed.
    used: u32,
    /// The block size of its class.
    size: u32,
}

/// An arena's record (from libc's `malloc`, apart from the arena).
struct Arena {
    /// What libc's `malloc` returned.
    base: *mut c_void,
    /// Its free pools (linked by `next`), how many, and how many it has.
    free: *mut Pool,
    nfree: u32,
    npools: u32,
    /// The neighbours in the list of arenas with a free pool.
    next: *mut Arena,
    prev: *mut Arena,
}

/// A free block.
struct Free {
    next: *mut Free,
}

/// The allocator's state.
struct Heap {
    /// Per class, the pools with a free block (doubly linked).
    usable: [*mut Pool; CLASSES],
    /// Arenas with a free pool (doubly linked).
    arenas: *mut Arena,
    /// One bit per 16 KiB of address space: set where a pool is
    /// ([`MAP_WORDS`] words from libc, made by [`install`]: a static array
    /// would be 32 KiB of zeros in the runtime library's data segment).
    map: *mut u32,
}

/// The one heap, in the guest's linear memory like everything else (so a
/// pre-initialised snapshot keeps it with the pools it describes).
struct HeapCell(UnsafeCell<Heap>);

// SAFETY: the guest has one thread; the heap is only reached through the
// allocator functions, which CPython calls with the GIL held.
unsafe impl Sync for HeapCell {}

static HEAP: HeapCell = HeapCell(UnsafeCell::new(Heap {
    usable: [ptr::null_mut(); CLASSES],
    arenas: ptr::null_mut(),
    map: ptr::null_mut(),
}));

// libc's allocator (wasi-libc's dlmalloc in the guest).
unsafe extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn calloc(nelem: usize, elsize: usize) -> *mut c_void;
    fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
}

/// Makes this allocator serve CPython's `PyMem_*` and `PyObject_*`
/// domains from now on (`PyMem_RawMalloc` stays libc's). Blocks those
/// domains handed out before came from libc's `malloc` (the WASI build has
/// no pymalloc), and `py_free`/`py_realloc` pass every pointer that is not
/// in a pool to libc, so switching while the interpreter runs is sound.
pub(crate) fn install() {
    // SAFETY: libc's calloc; the heap is not in use yet.
    let map = unsafe { calloc(MAP_WORDS, core::mem::size_of::<u32>()) }.cast::<u32>();
    if map.is_null() {
        // Out of memory: CPython keeps libc's allocator.
        return;
    }
    // SAFETY: as above.
    unsafe { heap() }.map = map;
    let mut allocator = ffi::PyMemAllocatorEx {
        ctx: ptr::null_mut(),
        malloc: Some(py_malloc),
        calloc: Some(py_calloc),
        realloc: Some(py_realloc),
        free: Some(py_free),
    };
    // SAFETY: called once, with the GIL held; CPython copies the struct,
    // and the functions follow the domains' contract (see each, and above
    // for the blocks allocated before).
    unsafe {
        ffi::PyMem_SetAllocator(ffi::PYMEM_DOMAIN_MEM, &mut allocator);
        ffi::PyMem_SetAllocator(ffi::PYMEM_DOMAIN_OBJ, &mut allocator);
    }
}

/// The heap.
///
/// # Safety
///
/// No other reference to it may be live (the allocator functions do not
/// call each other while holding one).
#[allow(clippy::mut_from_ref, reason = "single-threaded guest, see HeapCell")]
#[inline(always)]
unsafe fn heap() -> &'static mut Heap {
    // SAFETY: per the function's contract.
    unsafe { &mut *HEAP.0.get() }
}

impl Heap {
    /// Whether `addr` lies in a pool.
    #[inline(always)]
    fn in_pool(&self, addr: usize) -> bool {
        let page = addr >> POOL_SHIFT;
        // SAFETY: the map has MAP_WORDS words (the index is reduced to it).
        let word = unsafe { *self.map.add((page >> 5) % MAP_WORDS) };
        word & (1 << (page & 31)) != 0
    }

    fn mark(&mut self, pool: *mut Pool, on: bool) {
        let page = pool as usize >> POOL_SHIFT;
        // SAFETY: as in `in_pool`; no other reference to the word is live.
        let word = unsafe { &mut *self.map.add((page >> 5) % MAP_WORDS) };
        if on {
            *word |= 1 << (page & 31);
        } else {
            *word &= !(1 << (page & 31));
        }
    }

    /// A block of at most [`SMALL_MAX`] bytes, or NULL.
    #[inline(always)]
    fn alloc_small(&mut self, size: usize) -> *mut u8 {
        let class = size.saturating_sub(1) / GRAIN;
        let mut pool = self.usable[class % CLASSES];
        if pool.is_null() {
            pool = self.new_pool(class % CLASSES);
            if pool.is_null() {
                return ptr::null_mut();
            }
        }
        // SAFETY: `pool` is a live pool of this class with room (pools
        // leave the list when full).
        unsafe {
            let p = &mut *pool;
            let block = if p.free.is_null() {
                let block = pool.cast::<u8>().add(p.bump as usize);
                p.bump += p.size;
                block
            } else {
                let block = p.free;
                p.free = (*block).next;
                block.cast::<u8>()
            };
            p.used += 1;
            if p.free.is_null() && p.bump as usize + p.size as usize > POOL_SIZE {
                self.unlink(pool, class % CLASSES);
            }
            block
        }
    }

    /// Frees a block of a pool.
    ///
    /// # Safety
    ///
    /// `block` was handed out by [`Heap::alloc_small`] and not freed since.
    #[inline(always)]
    unsafe fn free_small(&mut self, block: *mut u8) {
        let pool = (block as usize & !(POOL_SIZE - 1)) as *mut Pool;
        // SAFETY: `block` is in a live pool (its map bit is set), whose
        // header starts at the pool's aligned start.
        unsafe {
            let p = &mut *pool;
            let class = (p.size as usize / GRAIN - 1) % CLASSES;
            let was_full = p.free.is_null() && p.bump as usize + p.size as usize > POOL_SIZE;
            let freed = block.cast::<Free>();
            (*freed).next = p.free;
            p.free = freed;
            p.used -= 1;
            if p.used == 0 {
                if !was_full {
                    self.unlink(pool, class);
                }
                self.retire(pool);
            } else if was_full {
                self.push(pool, class);
            }
        }
    }

    /// The block size of the pool block at `block`.
    ///
    /// # Safety
    ///
    /// `block` is in a pool ([`Heap::in_pool`]).
    #[inline(always)]
    unsafe fn block_size(block: *mut u8) -> usize {
        let pool = (block as usize & !(POOL_SIZE - 1)) as *const Pool;
        // SAFETY: per the contract, a live pool's header.
        unsafe { (*pool).size as usize }
    }

    /// A pool for `class`, put first in its list; NULL when memory is out.
    #[cold]
    fn new_pool(&mut self, class: usize) -> *mut Pool {
        if self.arenas.is_null() && !self.new_arena() {
            return ptr::null_mut();
        }
        let arena = self.arenas;
        // SAFETY: arenas in the list are live and have a free pool.
        let pool = unsafe {
            let a = &mut *arena;
            let pool = a.free;
            a.free = (*pool).next;
            a.nfree -= 1;
            if a.nfree == 0 {
                self.unlink_arena(arena);
            }
            pool
        };
        // SAFETY: `pool` is POOL_SIZE bytes of memory we own, aligned.
        unsafe {
            pool.write(Pool {
                free: ptr::null_mut(),
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
                arena,
                bump: HEADER as u32,
                used: 0,
                size: ((class + 1) * GRAIN) as u32,
            });
        }
        self.push(pool, class);
        pool
    }

    /// Takes an arena from libc and puts it in the list; false when memory
    /// is out.
    #[cold]
    fn new_arena(&mut self) -> bool {
        // SAFETY: libc's allocator.
        let (base, arena) = unsafe {
            (
                malloc(ARENA_SIZE),
                malloc(core::mem::size_of::<Arena>()).cast::<Arena>(),
            )
        };
        if base.is_null() || arena.is_null() {
            // SAFETY: each is NULL or from malloc, unused.
            unsafe {
                free(base);
                free(arena.cast());
            }
            return false;
        }
        let first = (base as usize).next_multiple_of(POOL_SIZE);
        let npools = (base as usize + ARENA_SIZE - first) / POOL_SIZE;
        let mut free_pools: *mut Pool = ptr::null_mut();
        for i in (0..npools).rev() {
            let pool = (first + i * POOL_SIZE) as *mut Pool;
            self.mark(pool, true);
            // SAFETY: inside the block `base` (the loop stays in it); the
            // pool is not handed out yet, only its `next` is written.
            unsafe { ptr::addr_of_mut!((*pool).next).write(free_pools) };
            free_pools = pool;
        }
        // SAFETY: `arena` is an Arena-sized block from malloc.
        unsafe {
            arena.write(Arena {
                base,
                free: free_pools,
                nfree: npools as u32,
                npools: npools as u32,
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
            });
        }
        self.push_arena(arena);
        true
    }

    /// An empty pool goes back to its arena; an arena with every pool free
    /// goes back to libc.
    #[cold]
    fn retire(&mut self, pool: *mut Pool) {
        // SAFETY: a live pool in no list, and its live arena.
        unsafe {
            let arena = (*pool).arena;
            let a = &mut *arena;
            (*pool).next = a.free;
            a.free = pool;
            a.nfree += 1;
            if a.nfree == 1 {
                self.push_arena(arena);
            }
            if a.nfree == a.npools {
                self.unlink_arena(arena);
                let first = (a.base as usize).next_multiple_of(POOL_SIZE);
                for i in 0..a.npools as usize {
                    self.mark((first + i * POOL_SIZE) as *mut Pool, false);
                }
                free(a.base);
                free(arena.cast());
            }
        }
    }

    /// Puts `arena` in the list of arenas with a free pool, which is kept
    /// in address order: new pools come from the lowest arena, so objects
    /// that live long gather low in memory and the arenas above them empty
    /// and go back to libc, which then has one large free stretch for large
    /// allocations. (Taking the arena that last had a pool freed, a string
    /// printed between two rounds of a million strings pinned an arena in the
    /// middle of the freed memory, and a 100 MB `bytearray` no longer fit.)
    fn push_arena(&mut self, arena: *mut Arena) {
        let mut prev: *mut Arena = ptr::null_mut();
        let mut next = self.arenas;
        // SAFETY: `arena` and the arenas in the list are live.
        unsafe {
            while !next.is_null() && ((*next).base as usize) < (*arena).base as usize {
                prev = next;
                next = (*next).next;
            }
            (*arena).prev = prev;
            (*arena).next = next;
            if !next.is_null() {
                (*next).prev = arena;
            }
            if prev.is_null() {
                self.arenas = arena;
            } else {
                (*prev).next = arena;
            }
        }
    }

    /// Takes `arena` out of the list of arenas with a free pool.
    fn unlink_arena(&mut self, arena: *mut Arena) {
        // SAFETY: `arena` is in the list, so are its neighbours.
        unsafe {
            let (prev, next) = ((*arena).prev, (*arena).next);
            if prev.is_null() {
                self.arenas = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
        }
    }

    /// Puts `pool` first in the list of `class`.
    #[inline(always)]
    fn push(&mut self, pool: *mut Pool, class: usize) {
        let head = self.usable[class];
        // SAFETY: `pool` and `head` (if not NULL) are live pools.
        unsafe {
            (*pool).prev = ptr::null_mut();
            (*pool).next = head;
            if !head.is_null() {
                (*head).prev = pool;
            }
        }
        self.usable[class] = pool;
    }

    /// Takes `pool` out of the list of `class`.
    #[inline(always)]
    fn unlink(&mut self, pool: *mut Pool, class: usize) {
        // SAFETY: `pool` is in that list, so are its neighbours.
        unsafe {
            let (prev, next) = ((*pool).prev, (*pool).next);
            if prev.is_null() {
                self.usable[class] = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
        }
    }
}

/// `malloc` of the domains: a pool block, or libc's for large sizes.
unsafe extern "C" fn py_malloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    if size <= SMALL_MAX {
        // SAFETY: the allocator functions never overlap (one thread, no
        // reentry).
        unsafe { heap() }.alloc_small(size).cast()
    } else {
        // SAFETY: libc's malloc, any size.
        unsafe { malloc(size) }
    }
}

/// `calloc` of the domains.
unsafe extern "C" fn py_calloc(_ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    match nelem.checked_mul(elsize) {
        Some(size) if size <= SMALL_MAX => {
            // SAFETY: as in `py_malloc`.
            let block = unsafe { heap() }.alloc_small(size);
            if !block.is_null() {
                // SAFETY: the block has at least `size` bytes.
                unsafe { ptr::write_bytes(block, 0, size) };
            }
            block.cast()
        }
        Some(_) => {
            // SAFETY: libc's calloc.
            unsafe { calloc(nelem, elsize) }
        }
        None => ptr::null_mut(),
    }
}

/// `realloc` of the domains: a pool block stays where it is while the new
/// size fits its block and uses more than three quarters of it; otherwise
/// the contents move (into a pool block or to libc).
unsafe extern "C" fn py_realloc(ctx: *mut c_void, old: *mut c_void, size: usize) -> *mut c_void {
    if old.is_null() {
        // SAFETY: as the caller's contract.
        return unsafe { py_malloc(ctx, size) };
    }
    // SAFETY: as in `py_malloc`; the reference ends before the calls below.
    let in_pool = unsafe { heap() }.in_pool(old as usize);
    if !in_pool {
        // SAFETY: `old` came from libc's allocator (CPython pairs the
        // functions of a domain); size 0 would free it in some libcs.
        return unsafe { realloc(old, size.max(1)) };
    }
    // SAFETY: `old` is a pool block.
    let have = unsafe { Heap::block_size(old.cast()) };
    if size <= have && 4 * size > 3 * have {
        return old;
    }
    // SAFETY: as the caller's contract.
    let new = unsafe { py_malloc(ctx, size) };
    if !new.is_null() {
        // SAFETY: both live, distinct blocks, each at least this long; then
        // the old block, handed out by this heap, is freed once.
        unsafe {
            ptr::copy_nonoverlapping(old.cast::<u8>(), new.cast::<u8>(), size.min(have));
            heap().free_small(old.cast());
        }
    }
    new
}

/// `free` of the domains.
unsafe extern "C" fn py_free(_ctx: *mut c_void, block: *mut c_void) {
    if block.is_null() {
        return;
    }
    // SAFETY: as in `py_malloc`.
    let heap = unsafe { heap() };
    if heap.in_pool(block as usize) {
        // SAFETY: a pool block CPython is done with.
        unsafe { heap.free_small(block.cast()) };
    } else {
        // SAFETY: from libc's allocator (see `py_realloc`).
        unsafe { free(block) };
    }
}
