/* libseccomp; linked statically through SkiffSeccomp's linker settings, so no `link` line. */
#include <seccomp.h>
