//! Embeds every `migrations/<timestamp>_<name>/migration.sql` of the
//! workspace, in name order, so a new migration folder needs no code change.

use std::{env, fs, path::PathBuf};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("../../migrations")
        .canonicalize()
        .expect("the workspace has a migrations/ folder");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut names: Vec<String> = fs::read_dir(&root)
        .expect("readable migrations/")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("migration.sql").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut generated = String::from("pub(crate) static EMBEDDED: &[(&str, &str)] = &[\n");
    for name in &names {
        let sql = root.join(name).join("migration.sql");
        println!("cargo:rerun-if-changed={}", sql.display());
        generated.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            sql.display().to_string()
        ));
    }
    generated.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("migrations.rs");
    fs::write(out, generated).expect("writable OUT_DIR");
}
