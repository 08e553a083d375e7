use std::process::ExitCode;

fn main() -> ExitCode {
    keyri::cli::main()
}
