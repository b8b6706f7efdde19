// Linux's event polling, which Glibc's Swift module leaves out: the simulator's CoAP reactor waits on
// thousands of device sockets at once.
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>
