// ctrl QICK program for board zcu216: 2 attempt slots, 136/4096 program words, 17/1024 waveforms
     NOP 
     REG_WR s12 imm #0 
     TIME #430 inc_ref 
     REG_WR r0 imm #0 
SLOT:
     WPORT_WR p0 wmem [&2] @0 
     WPORT_WR p4 wmem [&3] @0 
     WPORT_WR p4 wmem [&1] @1 
     TRIG p18 set @215 
     TRIG p18 clr @225 
     TRIG p13 set @218 
     TRIG p13 clr @228 
     TRIG p10 set @219 
     TRIG p12 set @219 
     TRIG p10 clr @229 
     TRIG p12 clr @229 
     WPORT_WR p4 wmem [&0] @821 
     WPORT_WR p0 wmem [&4] @821 
     REG_WR s15 label SKIP 
     WAIT [s15] @866 time 
     DPORT_RD p3 
     TEST -op(s8 - #25) -uf 
     REG_WR s15 label KEEP_22 
     JUMP [s15] -if(S) 
     WPORT_WR p3 wmem [&5] @984 
KEEP_22:
     REG_WR s15 label SKIP 
     WAIT [s15] @867 time 
     DPORT_RD p2 
     TEST -op(s8 - #23) -uf 
     REG_WR s15 label KEEP_30 
     JUMP [s15] -if(S) 
     WPORT_WR p2 wmem [&6] @985 
KEEP_30:
     REG_WR s15 label SKIP 
     WAIT [s15] @875 time 
     DPORT_RD p0 
     TEST -op(s8 - #6) -uf 
     REG_WR s15 label KEEP_38 
     JUMP [s15] -if(S) 
     WPORT_WR p14 wmem [&7] @993 
KEEP_38:
     TRIG p10 set @1041 
     TRIG p10 clr @1051 
     REG_WR s15 label SKIP 
     WAIT [s15] @1697 time 
     DPORT_RD p0 
     TEST -op(s8 - #21) -uf 
     REG_WR s15 label KEEP_48 
     JUMP [s15] -if(S) 
     WPORT_WR p9 wmem [&8] @1815 
KEEP_48:
     TIME #1830 inc_ref 
     WPORT_WR p2 wmem [&9] @0 
     WPORT_WR p3 wmem [&5] @0 
     WPORT_WR p4 wmem [&0] @0 
     WPORT_WR p0 wmem [&4] @0 
     WPORT_WR p3 wmem [&10] @16 
     WPORT_WR p12 wmem [&11] @16 
     WPORT_WR p2 wmem [&12] @16 
     WPORT_WR p3 wmem [&5] @82 
     WPORT_WR p3 wmem [&13] @98 
     WPORT_WR p12 wmem [&14] @98 
     WPORT_WR p3 wmem [&15] @166 
     WPORT_WR p4 wmem [&16] @182 
     TRIG p10 set @220 
     TRIG p10 clr @230 
     TRIG p13 set @400 
     TRIG p13 clr @410 
     TRIG p12 set @401 
     TRIG p12 clr @411 
     WPORT_WR p4 wmem [&1] @822 
     WPORT_WR p0 wmem [&2] @822 
     REG_WR s15 label SKIP 
     WAIT [s15] @876 time 
     TIME #994 inc_ref 
     REG_WR s15 label ABORT_0 
     DPORT_RD p0 
     TEST -op(s8 - #21) -uf 
     JUMP [s15] -if(NS) 
     TRIG p10 set @47 
     TRIG p10 clr @57 
     REG_WR s15 label SKIP 
     WAIT [s15] @55 time 
     DPORT_RD p2 
     TEST -op(s8 - #23) -uf 
     REG_WR r1 imm #0 
     REG_WR r1 imm -if(NS) #1 
     REG_WR s15 label SKIP 
     WAIT [s15] @54 time 
     DPORT_RD p3 
     TEST -op(s8 - #25) -uf 
     REG_WR r1 op -if(NS) -op(r1 XOR #1) 
     TIME #182 inc_ref 
     REG_WR s15 label ABORT_1 
     TEST -op(r1) -uf 
     JUMP [s15] -if(NZ) 
     REG_WR s15 label SKIP 
     WAIT [s15] @-300 time 
     DPORT_RD p0 
     TEST -op(s8 - #21) -uf 
     REG_WR r1 imm #0 
     REG_WR r1 imm -if(NS) #1 
     REG_WR s15 label SKIP 
     WAIT [s15] @521 time 
     DPORT_RD p0 
     TEST -op(s8 - #6) -uf 
     REG_WR r1 op -if(NS) -op(r1 XOR #1) 
     TIME #640 inc_ref 
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
     DMEM_WR [&s12] imm #2 
     TIME #467 inc_ref 
     REG_WR s15 label TAIL 
     JUMP [s15] 
ABORT_2:
     DMEM_WR [&s12] imm #3 
     REG_WR s15 label TAIL 
     JUMP [s15] 
