// The one network namespace (lo up) that containers with network 'shared' join: made on first use,
// kept for the life of the process. -1 if it cannot be made (the child's SETNS then fails).
#ifndef SBX_SHARED_NETNS_H
#define SBX_SHARED_NETNS_H

namespace sbx {

int SharedNetns();

}  // namespace sbx

#endif
