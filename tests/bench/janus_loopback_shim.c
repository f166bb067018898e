/* LD_PRELOADed into Janus by mafalda-bench (janus_sfu.h): Janus skips interfaces flagged
 * IFF_LOOPBACK when gathering ICE candidates, whatever ice_enforce_list says, so a
 * loopback benchmark would get no candidate at all. Clearing the flag in getifaddrs()'s
 * answer makes 127.0.0.1 an ordinary host candidate. Built without sanitizers: it is
 * loaded into an uninstrumented program. */
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>

int getifaddrs(struct ifaddrs **ifap);

int getifaddrs(struct ifaddrs **ifap) {
  int (*real)(struct ifaddrs **) = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
  if (!real) return -1;
  int rv = real(ifap);
  if (rv == 0)
    for (struct ifaddrs *i = *ifap; i; i = i->ifa_next) i->ifa_flags &= ~(unsigned)IFF_LOOPBACK;
  return rv;
}
