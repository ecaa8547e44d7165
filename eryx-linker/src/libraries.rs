//! The base libraries every component is linked from, in link order.
//!
//! This table is the single definition of the order: `cargo xtask dist`
//! names the extracted files after it, the linker links in this order, and
//! the tests import it. **Order decides duplicate symbols:** when two
//! libraries export the same symbol, the one listed first wins (this is how
//! `wit_component::Linker` resolves them). The runtime comes first so that its
//! `cabi_realloc` is the component's. Constructors run in dependency order
//! whatever this order is.

/// The file name of the eryx runtime library.
pub const RUNTIME_LIBRARY: &str = "liberyx_runtime.so";

/// The file name of the bindings library that the linker generates from
/// `wit/sandbox.wit` (it names [`RUNTIME_LIBRARY`] as its interpreter).
pub const BINDINGS_LIBRARY: &str = "liberyx_bindings.so";

/// The C++ exception runtime (built by `cargo xtask dist`): libc++abi's
/// throw/catch machinery and personality routine, libunwind's wasm part,
/// and the `__cpp_exception` tag every library's exception code imports.
pub const EH_LIBRARY: &str = "libunwind.so";

/// The CPython library.
pub const PYTHON_LIBRARY: &str = "libpython3.14.so";

/// One base library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseLibrary {
    /// The file name, as other libraries' `@dylink.0` `needed` lists name it.
    pub name: &'static str,
    /// Why it is in the set.
    pub purpose: &'static str,
}

/// The base libraries, in link order (see the module docs for why order matters).
pub const BASE_LIBRARIES: &[BaseLibrary] = &[
    BaseLibrary {
        name: RUNTIME_LIBRARY,
        purpose: "the eryx interpreter runtime: implements the wit-dylib hooks on CPython",
    },
    BaseLibrary {
        name: "libc.so",
        purpose: "wasi-libc (wasip2); exports malloc and friends",
    },
    BaseLibrary {
        name: "libwasi-emulated-mman.so",
        purpose: "mmap emulation (for native extensions that need it)",
    },
    BaseLibrary {
        name: "libwasi-emulated-process-clocks.so",
        purpose: "clock()/times() emulation, needed by libpython",
    },
    BaseLibrary {
        name: "libwasi-emulated-getpid.so",
        purpose: "getpid() emulation, needed by libpython",
    },
    BaseLibrary {
        name: "libwasi-emulated-signal.so",
        purpose: "signal() emulation, needed by libpython",
    },
    BaseLibrary {
        name: EH_LIBRARY,
        purpose: "C++ exceptions (before libc++abi.so: its exception-pointer functions \
                  replace libc++abi's stubs)",
    },
    BaseLibrary {
        name: "libc++abi.so",
        purpose: "the C++ ABI runtime (for C++ native extensions)",
    },
    BaseLibrary {
        name: "libc++.so",
        purpose: "the C++ standard library (for C++ native extensions)",
    },
    BaseLibrary {
        name: PYTHON_LIBRARY,
        purpose: "CPython 3.14",
    },
];
