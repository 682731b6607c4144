//! Tests of the attach protocol, server and client.
