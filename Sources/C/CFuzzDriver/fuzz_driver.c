// Declarations only: the driver itself is in compiler-rt.
