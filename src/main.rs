//! The `ferry` binary: parse the command line and hand over to [`ferry::cli`].

fn main() {
    let code = ferry::cli::main();
    std::process::exit(code);
}
