#ifndef AMARS_CCOAP_SHIM_H
#define AMARS_CCOAP_SHIM_H
// Before libcoap, so its coap_io_do_epoll takes a complete struct epoll_event: the server drives libcoap's
// documented external epoll loop (CoAPServer.turn) and needs epoll_wait, which Swift's Glibc module lacks.
#include <sys/epoll.h>
#include <coap3/coap.h>
#endif
