# Sourced by demo.sh and test.sh: makes `cargo` available. A fresh Debian has no Rust toolchain (and
# Debian 12's packaged rustc is older than rcr's rust-version), so rustup installs the stable one.
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl ca-certificates >/dev/null; }
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy >/dev/null
  }
  export PATH="$HOME/.cargo/bin:$PATH"
fi
