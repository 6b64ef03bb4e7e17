// ctrl QICK program for board zcu216: 2 attempt slots, 153/4096 program words, 20/1024 waveforms
     NOP 
     REG_WR s12 imm #0 
     TIME #430 inc_ref 
     REG_WR r0 imm #0 
SLOT:
     WPORT_WR p0 wmem [&3] @0 
     WPORT_WR p1 wmem [&4] @0 
     WPORT_WR p4 wmem [&5] @0 
     WPORT_WR p4 wmem [&1] @1 
     WPORT_WR p4 wmem [&2] @2 
     TRIG p18 set @215 
     TRIG p18 clr @225 
     TRIG p11 set @217 
     TRIG p11 clr @227 
     TRIG p13 set @218 
     TRIG p13 clr @228 
     TRIG p10 set @219 
     TRIG p12 set @219 
     TRIG p10 clr @229 
     TRIG p12 clr @229 
     WPORT_WR p4 wmem [&0] @821 
     WPORT_WR p0 wmem [&6] @821 
     REG_WR s15 label SKIP 
     WAIT [s15] @866 time 
     DPORT_RD p3 
     TEST -op(s8 - #25) -uf 
     REG_WR s15 label KEEP_26 
     JUMP [s15] -if(S) 
     WPORT_WR p9 wmem [&7] @984 
KEEP_26:
     REG_WR s15 label SKIP 
     WAIT [s15] @867 time 
     DPORT_RD p2 
     TEST -op(s8 - #23) -uf 
     REG_WR s15 label KEEP_34 
     JUMP [s15] -if(S) 
     WPORT_WR p8 wmem [&8] @985 
KEEP_34:
     REG_WR s15 label SKIP 
     WAIT [s15] @873 time 
     DPORT_RD p1 
     TEST -op(s8 - #9) -uf 
     REG_WR s15 label KEEP_42 
     JUMP [s15] -if(S) 
     WPORT_WR p15 wmem [&9] @991 
KEEP_42:
     REG_WR s15 label SKIP 
     WAIT [s15] @875 time 
     DPORT_RD p0 
     TEST -op(s8 - #6) -uf 
     REG_WR s15 label KEEP_50 
     JUMP [s15] -if(S) 
     WPORT_WR p3 wmem [&10] @993 
KEEP_50:
     TRIG p10 set @1041 
     TRIG p10 clr @1051 
     REG_WR s15 label SKIP 
     WAIT [s15] @1697 time 
     DPORT_RD p0 
     TEST -op(s8 - #21) -uf 
     REG_WR s15 label KEEP_60 
     JUMP [s15] -if(S) 
     WPORT_WR p13 wmem [&11] @1815 
KEEP_60:
     TIME #1830 inc_ref 
     WPORT_WR p8 wmem [&12] @0 
     WPORT_WR p9 wmem [&7] @0 
     WPORT_WR p15 wmem [&13] @0 
     WPORT_WR p2 wmem [&14] @0 
     WPORT_WR p4 wmem [&0] @0 
     WPORT_WR p0 wmem [&6] @0 
     WPORT_WR p8 wmem [&15] @16 
     WPORT_WR p9 wmem [&16] @16 
     WPORT_WR p4 wmem [&17] @32 
     WPORT_WR p15 wmem [&9] @65 
     WPORT_WR p15 wmem [&18] @80 
     WPORT_WR p2 wmem [&19] @80 
     TRIG p10 set @220 
     TRIG p10 clr @230 
     TRIG p13 set @250 
     TRIG p13 clr @260 
     TRIG p12 set @251 
     TRIG p12 clr @261 
     WPORT_WR p4 wmem [&1] @822 
     WPORT_WR p0 wmem [&3] @822 
     REG_WR s15 label SKIP 
     WAIT [s15] @876 time 
     TIME #994 inc_ref 
     REG_WR s15 label ABORT_0 
     DPORT_RD p0 
     TEST -op(s8 - #21) -uf 
     JUMP [s15] -if(NS) 
     REG_WR s15 label SKIP 
     WAIT [s15] @-95 time 
     DPORT_RD p2 
     TEST -op(s8 - #23) -uf 
     REG_WR r1 imm #0 
     REG_WR r1 imm -if(NS) #1 
     REG_WR s15 label SKIP 
     WAIT [s15] @-96 time 
     DPORT_RD p3 
     TEST -op(s8 - #25) -uf 
     REG_WR r1 op -if(NS) -op(r1 XOR #1) 
     TIME #32 inc_ref 
     REG_WR s15 label ABORT_1 
     TEST -op(r1) -uf 
     JUMP [s15] -if(NZ) 
     TRIG p10 set @15 
     TRIG p10 clr @25 
     REG_WR s15 label SKIP 
     WAIT [s15] @-150 time 
     DPORT_RD p0 
     TEST -op(s8 - #21) -uf 
     REG_WR r1 imm #0 
     REG_WR r1 imm -if(NS) #1 
     REG_WR s15 label SKIP 
     WAIT [s15] @671 time 
     DPORT_RD p0 
     TEST -op(s8 - #6) -uf 
     REG_WR r1 op -if(NS) -op(r1 XOR #1) 
     TIME #790 inc_ref 
     REG_WR s15 label ABORT_2 
     TEST -op(r1) -uf 
     JUMP [s15] -if(NZ) 
     DMEM_WR [&s12] imm #0 
TAIL:
     REG_WR s12 op -op(s12 + #1) 
     REG_WR s15 label SLOT 
     TEST -op(r0 - #1) -uf 
     JUMP [s15] -if(NZ) -wr(r0 op) -op(r0 + #1) 
     REG_WR s15 label NEXT 
     JUMP [s15] 
ABORT_0:
     TRIG p10 set @0 
     TRIG p10 clr @10 
     DMEM_WR [&s12] imm #1 
     TIME #612 inc_ref 
     REG_WR s15 label TAIL 
     JUMP [s15] 
ABORT_1:
     TRIG p10 set @0 
     TRIG p10 clr @10 
     DMEM_WR [&s12] imm #2 
     TIME #612 inc_ref 
     REG_WR s15 label TAIL 
     JUMP [s15] 
ABORT_2:
     DMEM_WR [&s12] imm #3 
     REG_WR s15 label TAIL 
     JUMP [s15] 
     REG_WR r0 imm #1173082733 
     REG_WR r0 imm #1770589752 
     REG_WR r0 imm #2 
