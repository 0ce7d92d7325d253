/* msglab.so: the Wireshark 4.0 plugin entry points. One dissector source
 * file per protocol registers itself from here. */
#define WS_BUILD_DLL
#include <wireshark.h>
#include <epan/packet.h>
#include <epan/proto.h>

#ifndef VERSION
#define VERSION "0.1.0"
#endif

WS_DLL_PUBLIC_DEF const gchar plugin_version[] = VERSION;
WS_DLL_PUBLIC_DEF const int plugin_want_major = 4;
WS_DLL_PUBLIC_DEF const int plugin_want_minor = 0;

WS_DLL_PUBLIC void plugin_register(void);

void proto_register_secmsg(void);
void proto_reg_handoff_secmsg(void);
void proto_register_slmp(void);
void proto_reg_handoff_slmp(void);
void proto_register_csmp(void);
void proto_reg_handoff_csmp(void);
void proto_register_spchat(void);
void proto_reg_handoff_spchat(void);
void proto_register_socp(void);
void proto_reg_handoff_socp(void);
void proto_register_signal(void);
void proto_reg_handoff_signal(void);

void plugin_register(void)
{
    static proto_plugin secmsg;
    secmsg.register_protoinfo = proto_register_secmsg;
    secmsg.register_handoff = proto_reg_handoff_secmsg;
    proto_register_plugin(&secmsg);

    static proto_plugin slmp;
    slmp.register_protoinfo = proto_register_slmp;
    slmp.register_handoff = proto_reg_handoff_slmp;
    proto_register_plugin(&slmp);

    static proto_plugin csmp;
    csmp.register_protoinfo = proto_register_csmp;
    csmp.register_handoff = proto_reg_handoff_csmp;
    proto_register_plugin(&csmp);

    static proto_plugin spchat;
    spchat.register_protoinfo = proto_register_spchat;
    spchat.register_handoff = proto_reg_handoff_spchat;
    proto_register_plugin(&spchat);

    static proto_plugin socp;
    socp.register_protoinfo = proto_register_socp;
    socp.register_handoff = proto_reg_handoff_socp;
    proto_register_plugin(&socp);

    static proto_plugin signal_chat;
    signal_chat.register_protoinfo = proto_register_signal;
    signal_chat.register_handoff = proto_reg_handoff_signal;
    proto_register_plugin(&signal_chat);
}
