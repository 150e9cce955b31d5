//! The built-in demo process: prints a counter twice a second to stdout, forever. `scripts/demo.sh`
//! checkpoints it, restores it, and shows that it goes on counting from where it was.

use std::io::Write;

fn main() {
    let mut out = std::io::stdout().lock();
    let mut i: u64 = 0;
    loop {
        let _ = writeln!(out, "{i}");
        let _ = out.flush();
        i += 1;
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
