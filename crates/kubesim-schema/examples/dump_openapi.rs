//! Writes the OpenAPI v3 index and every built-in group-version document into a directory
//! (default `./openapi-v3`), for inspecting them or serving them to a real kubectl.
//!
//! `cargo run -p kubesim-schema --example dump_openapi -- /tmp/out`

use kubesim_schema::{builtin_types, openapi};

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "openapi-v3".to_owned());
    std::fs::create_dir_all(&dir)?;
    let types = builtin_types();
    let index = openapi::openapi_v3_index(&types);
    std::fs::write(format!("{dir}/index.json"), index.to_string())?;
    for (g, v) in openapi::group_versions(&types) {
        if let Some(doc) = openapi::openapi_v3_group_version(&types, &g, &v) {
            let name = openapi::group_version_path(&g, &v).replace('/', "__");
            std::fs::write(format!("{dir}/{name}.json"), doc.to_string())?;
        }
    }
    Ok(())
}
