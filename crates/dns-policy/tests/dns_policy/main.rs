//! The DNS enforcement point's tests, one binary: the resolver (`hallpass-dns`) with the
//! real policy filter and event log, over real sockets and a real SQLite store.

mod resolver;
