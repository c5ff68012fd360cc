"""The hub's gRPC API: servicers, protobuf codecs, interceptors, the error table and the server factory — the only
hub code that sees protobuf or grpc — and the API's own clients (the command line's calls, the self-check)."""
