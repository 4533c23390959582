//! Writing responses: cached answers (TTLs patched, the client's question and EDNS),
//! blocks in each block mode, refusals, SERVFAIL and safe-search CNAMEs.

use super::*;

impl<F: QueryFilter, L: QueryLog<F::Info>> Resolver<F, L> {
    /// Copies a cached answer into `out` for query `q`: ID, flags, the client's question
    /// bytes, TTLs, and an OPT record when the client used EDNS.
    pub(super) fn write_answer(
        &self,
        out: &mut Vec<u8>,
        q: &Query<'_>,
        a: &Answer,
        serve: Serve,
        ede: Option<(u16, &str)>,
    ) {
        out.clear();
        out.extend_from_slice(&a.wire);
        patch_ttls(out, a, serve, self.config.cache.stale_ttl);
        out[0..2].copy_from_slice(&q.id.to_be_bytes());
        let mut flags = wire::response_flags(q.flags, a.rcode);
        if a.authentic && (q.dnssec_ok() || q.flags & flag::AD != 0) {
            flags |= flag::AD;
        }
        out[2..4].copy_from_slice(&flags.to_be_bytes());
        // Same name, so the same length: restore the client's spelling (0x20 case).
        let qlen = q.question.len();
        if out.len() >= wire::HEADER_LEN + qlen {
            out[wire::HEADER_LEN..wire::HEADER_LEN + qlen]
                .copy_from_slice(&q.packet[q.question.clone()]);
        }
        if let Some(e) = q.edns {
            let ar = u16::from_be_bytes([out[10], out[11]]).saturating_add(1);
            out[10..12].copy_from_slice(&ar.to_be_bytes());
            wire::push_opt(out, self.config.udp_payload, a.rcode, e.dnssec_ok, ede);
        }
    }

    pub(super) fn write_block(
        &self,
        out: &mut Vec<u8>,
        q: &Query<'_>,
        mode: BlockMode,
        ttl: u32,
        reason: &str,
        ede: EdeCode,
    ) -> u16 {
        let (rc, v4, v6) = match mode {
            BlockMode::Nxdomain => (rcode::NXDOMAIN, None, None),
            BlockMode::Null => (rcode::NOERROR, Some([0u8; 4]), Some([0u8; 16])),
            BlockMode::Address { v4, v6 } => (rcode::NOERROR, Some(v4.octets()), Some(v6.octets())),
        };
        wire::begin_response(out, q, rc);
        let (mut an, mut ns) = (0, 0);
        match (q.qtype, v4, v6) {
            (rtype::A, Some(a), _) => {
                wire::push_rr_qname(out, rtype::A, ttl, &a);
                an = 1;
            }
            (rtype::AAAA, _, Some(a)) => {
                wire::push_rr_qname(out, rtype::AAAA, ttl, &a);
                an = 1;
            }
            _ => {
                wire::push_block_soa(out, ttl);
                ns = 1;
            }
        }
        let ar = match q.edns {
            Some(e) => {
                wire::push_opt(
                    out,
                    self.config.udp_payload,
                    rc,
                    e.dnssec_ok,
                    Some((ede.code(), reason)),
                );
                1
            }
            None => 0,
        };
        wire::set_counts(out, 1, an, ns, ar);
        rc
    }

    pub(super) fn write_refused(&self, out: &mut Vec<u8>, q: &Query<'_>, ede: Option<(u16, &str)>) {
        self.write_rcode(out, q, rcode::REFUSED, ede);
    }

    pub(super) fn write_servfail(&self, out: &mut Vec<u8>, q: &Query<'_>) {
        let ede = Some((EdeCode::NoReachableAuthority.code(), "no upstream answered"));
        self.write_rcode(out, q, rcode::SERVFAIL, ede);
    }

    pub(super) fn write_rcode(
        &self,
        out: &mut Vec<u8>,
        q: &Query<'_>,
        rc: u16,
        ede: Option<(u16, &str)>,
    ) {
        wire::begin_response(out, q, rc);
        match q.edns {
            Some(e) => {
                wire::push_opt(out, self.config.udp_payload, rc, e.dnssec_ok, ede);
                wire::set_counts(out, 1, 0, 0, 1);
            }
            None => wire::set_counts(out, 1, 0, 0, 0),
        }
    }

    /// Safe search: CNAME from the client's name to `target`, then the target's answer
    /// records. Built with hickory (a rarer path than plain answers). False if the
    /// cached target answer cannot be re-encoded (the caller answers SERVFAIL).
    pub(super) fn write_safe_search(
        &self,
        out: &mut Vec<u8>,
        q: &Query<'_>,
        target: &str,
        a: &Answer,
        serve: Serve,
    ) -> bool {
        let mut tmp = a.wire.to_vec();
        patch_ttls(&mut tmp, a, serve, self.config.cache.stale_ttl);
        let build = || -> Option<Vec<u8>> {
            let upstream = Message::from_vec(&tmp).ok()?;
            let question =
                HQuery::read(&mut BinDecoder::new(&q.packet[q.question.clone()])).ok()?;
            let target_name = Name::from_ascii(target)
                .ok()?
                .append_domain(&Name::root())
                .ok()?;
            let mut msg = Message::new();
            msg.set_id(q.id)
                .set_message_type(MessageType::Response)
                .set_op_code(OpCode::Query)
                .set_recursion_desired(q.flags & flag::RD != 0)
                .set_recursion_available(true)
                .set_checking_disabled(q.checking_disabled())
                .set_response_code(ResponseCode::from_low(a.rcode as u8));
            let ttl = match serve {
                Serve::Stale => self.config.cache.stale_ttl,
                Serve::Fresh(_) => self.config.safe_search_ttl,
            };
            msg.add_answer(Record::from_rdata(
                question.name().clone(),
                ttl,
                RData::CNAME(CNAME(target_name)),
            ));
            msg.add_query(question);
            msg.add_answers(upstream.answers().iter().cloned());
            if let Some(e) = q.edns {
                let mut edns = Edns::new();
                edns.set_max_payload(self.config.udp_payload.max(512));
                edns.set_dnssec_ok(e.dnssec_ok);
                if matches!(serve, Serve::Stale) {
                    edns.options_mut()
                        .insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
                            wire::EDNS_OPTION_EDE,
                            ede_payload(EdeCode::StaleAnswer.code(), "Stale Answer"),
                        ));
                }
                msg.set_edns(edns);
            }
            msg.to_vec().ok()
        };
        match build() {
            Some(v) => {
                out.clear();
                out.extend_from_slice(&v);
                true
            }
            None => false,
        }
    }
}

fn ede_payload(code: u16, text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + text.len());
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(text.as_bytes());
    v
}

/// Rewrites every TTL in `out` (a copy of `a.wire`).
#[inline]
fn patch_ttls(out: &mut [u8], a: &Answer, serve: Serve, stale_ttl: u32) {
    for &(off, ttl) in a.ttls.iter() {
        let v = match serve {
            Serve::Fresh(age) => ttl.min(a.ttl_cap).saturating_sub(age),
            Serve::Stale => stale_ttl,
        };
        let off = off as usize;
        if let Some(dst) = out.get_mut(off..off + 4) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
    }
}
