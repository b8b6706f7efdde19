#ifndef AMARS_CQRENCODE_SHIM_H
#define AMARS_CQRENCODE_SHIM_H
#include <qrencode.h>
#endif
