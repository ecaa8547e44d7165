//! Links the bundle with the given extension files and prints how long it took.
//!
//! `cargo run -p eryx-linker --example link_time -- target/dist [EXT.so ...]`

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bundle =
        eryx_linker::Bundle::open(args.next().ok_or("usage: link_time BUNDLE [EXT.so ...]")?)?;
    let mut extensions = Vec::new();
    for path in args {
        let name = std::path::Path::new(&path)
            .file_name()
            .ok_or("extension path has no file name")?
            .to_string_lossy()
            .into_owned();
        extensions.push(eryx_linker::Extension::new(
            format!("{}/{name}", eryx_linker::SITE_PACKAGES),
            std::fs::read(&path)?,
        )?);
    }
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let start = Instant::now();
        size = eryx_linker::link_with_extensions(&bundle, &extensions)?.len();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{} extension(s): median {:.1} ms (min {:.1}, max {:.1}, n=5), component {} bytes",
        extensions.len(),
        times[2],
        times[0],
        times[4],
        size
    );
    Ok(())
}
