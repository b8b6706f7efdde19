// The platform hooks every board shares (libsecp256k1 callbacks, ...): see ../common/runtime.inc.
#include "../common/runtime.inc"
