//! `ferry attach`: a second console on a running run, from another terminal.
//!
//! Every `ferry run` serves a Unix socket ([`socket`], `<journal>.sock` by
//! default, mode 0600) through [`server`]; `ferry attach` connects with
//! [`client`] and drives the same console over it. The wire format is in
//! [`proto`]. This module knows the engine's handles and the journal, never the
//! screen: the console (`tui`) and the command line (`cli`) sit on top of it.

pub mod access;
pub mod client;
pub mod proto;
pub mod server;
pub mod socket;

#[cfg(test)]
mod socket_tests;
#[cfg(test)]
mod tests;
