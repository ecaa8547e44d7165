//! A host function, a mounted directory and live output together:
//!
//! ```text
//! cargo xtask dist    # once: builds the bundle in target/dist
//! cargo run -p eryx-host --example host_functions
//! ```
//!
//! The guest reads city names from a host directory mounted read-only at
//! `/data` and its unit from a file the host puts in its `/tmp`
//! (`write_file`), asks the host for each city's weather (an async Rust
//! function), prints a line per city while it runs and leaves a CSV report
//! in `/tmp` that the host reads back (`read_file`).

use std::time::Duration;

use eryx_host::{Access, Sandbox, Stream};
use serde_json::{Value, json};

const SCRIPT: &str = r#"
import asyncio

import csv, json

cities = open("/data/cities.txt").read().split()
unit = json.load(open("/tmp/settings.json"))["unit"]
print(f"asking the host about {len(cities)} cities")
rows = []

async def report(city):
    w = await get_weather(city=city)
    temp = w["temp_c"] if unit == "C" else round(w["temp_c"] * 9 / 5 + 32)
    rows.append((city, temp))
    print(f"{w['city']:>8}: {temp} °{unit}")

for city in cities:
    await report(city)
with open("/tmp/report.csv", "w", newline="") as f:
    csv.writer(f).writerows(rows)
try:
    await get_weather(city="Atlantis")
except eryx.HostError as e:
    print("the host said:", e)
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = tempfile::tempdir()?;
    std::fs::write(data.path().join("cities.txt"), "Oslo Lima Nairobi")?;
    let bundle = std::env::var("ERYX_BUNDLE").unwrap_or_else(|_| "target/dist".into());
    let mut sandbox = Sandbox::builder()
        .bundle(bundle)
        .function("get_weather", |args: Value| async move {
            // A real tool would call a service here.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let city = args["city"].as_str().unwrap_or_default().to_string();
            let temp = match city.as_str() {
                "Oslo" => 4,
                "Lima" => 19,
                "Nairobi" => 24,
                _ => return Err(format!("no weather station in {city}").into()),
            };
            Ok(json!({"city": city, "temp_c": temp}))
        })
        .mount("/data", data.path(), Access::ReadOnly)
        .build()
        .await?;
    sandbox.write_file("/tmp/settings.json", br#"{"unit": "F"}"#)?;
    let out = sandbox
        .execute_streaming(&format!("import eryx\n{SCRIPT}"), |chunk| {
            match chunk.stream {
                Stream::Stdout => print!("{chunk}"),
                Stream::Stderr => eprint!("{chunk}"),
            }
        })
        .await?;
    println!("(done: {} lines of output)", out.stdout.lines().count());
    let report = sandbox.read_file("/tmp/report.csv")?;
    print!(
        "the report it left in /tmp:\n{}",
        String::from_utf8_lossy(&report)
    );
    Ok(())
}
