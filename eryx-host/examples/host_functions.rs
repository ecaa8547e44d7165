//! A host function, a mounted directory and live output together:
//!
//! ```text
//! cargo xtask dist    # once: builds the bundle in target/dist
//! cargo run -p eryx-host --example host_functions
//! ```
//!
//! The guest reads city names from a host directory mounted read-only at
//! `/data`, asks the host for each city's weather (an async Rust function),
//! and prints a line per city while it runs.

use std::time::Duration;

use eryx_host::{Access, Sandbox, Stream};
use serde_json::{Value, json};

const SCRIPT: &str = r#"
import asyncio

cities = open("/data/cities.txt").read().split()
print(f"asking the host about {len(cities)} cities")

async def report(city):
    w = await get_weather(city=city)
    print(f"{w['city']:>8}: {w['temp_c']} °C")

for city in cities:
    await report(city)
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
    let out = sandbox
        .execute_streaming(&format!("import eryx\n{SCRIPT}"), |chunk| {
            match chunk.stream {
                Stream::Stdout => print!("{chunk}"),
                Stream::Stderr => eprint!("{chunk}"),
            }
        })
        .await?;
    println!("(done: {} lines of output)", out.stdout.lines().count());
    Ok(())
}
