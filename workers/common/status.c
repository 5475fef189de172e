#include "status.h"

const char *status_text(dx_status status)
{
    switch (status) {
    case DX_OK:
        return "ok";
    case DX_ERR_INVALID:
        return "invalid";
    case DX_ERR_NOT_FOUND:
        return "not_found";
    case DX_ERR_EXISTS:
        return "exists";
    case DX_ERR_IO:
        return "io_error";
    case DX_ERR_TIMEOUT:
        return "timeout";
    case DX_ERR_NOMEM:
        return "out_of_memory";
    case DX_ERR_PERMANENT:
        return "permanent";
    case DX_ERR_TOO_LARGE:
        return "too_large";
    case DX_ERR_NO_SPACE:
        return "no_space";
    }
    return "unknown";
}

int status_is_transient(dx_status status)
{
    return status == DX_ERR_IO || status == DX_ERR_TIMEOUT || status == DX_ERR_NOMEM ||
           status == DX_ERR_NO_SPACE;
}
