#ifndef AMARS_CMOSQUITTO_SHIM_H
#define AMARS_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
#endif
