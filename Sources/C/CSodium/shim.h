#ifndef AMARS_CSODIUM_SHIM_H
#define AMARS_CSODIUM_SHIM_H
#include <sodium.h>
#endif
