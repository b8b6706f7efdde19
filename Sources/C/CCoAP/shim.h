#ifndef AMARS_CCOAP_SHIM_H
#define AMARS_CCOAP_SHIM_H
#include <coap3/coap.h>
#endif
