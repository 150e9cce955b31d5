//! End-to-end tests of `rcr dump` / `rcr restore` on real processes.
//!
//! Each scenario starts a C program from tests/progs that sets up one kind of state, dumps and
//! restores it, and lets the program verify its state from inside (PASS/FAIL in its OUTFILE).
//! `RCR_E2E_SELFTEST=1` runs the scenarios without checkpoint/restore to validate the programs.

mod harness;

mod cli;
mod counter;
mod cpu;
mod events;
mod failures;
mod files;
mod ghost;
mod identity;
mod mem;
mod plugins;
mod programs;
mod rpc;
mod pty;
mod selfcheck;
mod shell_job;
mod signals;
mod syscalls;
mod timers;
mod tree;
mod unix;
