//! ptrace and remote syscalls (placeholder)
