/* libcap; linked statically through SkiffCaps' linker settings, so no `link` line in the modulemap. */
#include <sys/capability.h>
