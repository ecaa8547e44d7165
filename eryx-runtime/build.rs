//! Compresses the prelude (`src/prelude.py`) with zlib for the runtime to
//! embed: 26 KB of commented Python is ~9 KB compressed, and the runtime's
//! size is what every extension set links and loads. The guest inflates it
//! with CPython's built-in `zlib` once, when the interpreter starts (before
//! a snapshot is taken, so pre-initialised sandboxes never do). The first
//! snapshot made with this runtime happened to have a sparse heap, which
//! wasmtime then copied into every sandbox; a second build of the same
//! snapshot did not, and the host now maps sparse snapshot heaps
//! copy-on-write anyway (see `eryx-host/src/engine.rs`).

use std::path::PathBuf;

fn main() {
    let src = "src/prelude.py";
    println!("cargo::rerun-if-changed={src}");
    let text = std::fs::read(src).expect("eryx-runtime/src/prelude.py is readable");
    assert!(
        !text.contains(&0),
        "src/prelude.py contains a NUL byte, which CPython's compiler refuses"
    );
    let packed = miniz_oxide::deflate::compress_to_vec_zlib(&text, 10);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("prelude.py.z"), packed).expect("OUT_DIR is writable");
}
